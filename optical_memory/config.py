"""Typed configuration: the default TOML (config/default.toml), a user TOML over it, then the environment.

The default TOML is the one source of defaults: every setting has its value there and nowhere else
(the dataclasses below have none), so a `Config` is only ever made by `load_config`. Each table is
validated strictly (a string where a number or a boolean belongs is an error, not a guess) and every
error names the key and what is valid.

This is the only module that reads the environment. Variables:

* ``OPTICAL_MEMORY_CONFIG``  path of a TOML file whose tables override the defaults
* ``OPTICAL_MEMORY_ARCHIVE`` archive folder (also ``--archive PATH`` on the CLI)
* ``OPTICAL_MEMORY_ARCHIVE_URL`` a PostgreSQL archive, ``postgresql://...`` (also ``--archive-url URL``);
  the most specific setting wins: ``--archive``, then this, then ``OPTICAL_MEMORY_ARCHIVE``, then the file
* ``OPTICAL_MEMORY_READER``  reader name (``trained``, ``rapidocr``, ``template``, ...)
* the variable named by ``[reader.options] api_key_env``, if any: its value becomes the reader's
  ``api_key`` option (the endpoint reader's key stays out of the config file)

A user file's ``[[tiers]]`` list replaces the default list as a whole.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from optical_memory.errors import InvalidArgument
from optical_memory.pages import PageFormat
from optical_memory.tiers import Tier

__all__ = ["ArchiveConfig", "Config", "LimitsConfig", "default_archive_path", "default_config", "load_config"]

ENV_PREFIX = "OPTICAL_MEMORY_"


@dataclass(frozen=True)
class ArchiveConfig:
    path: Path
    map_size_mib: int
    max_map_size_mib: int
    busy_timeout_s: float
    url: str | None  # a PostgreSQL archive (optical_memory.postgres) instead of the folder at `path`


@dataclass(frozen=True)
class LimitsConfig:
    max_text_chars: int
    max_pages_per_call: int
    max_list_limit: int


@dataclass(frozen=True)
class Config:
    archive: ArchiveConfig
    page: PageFormat
    font_size: int
    limits: LimitsConfig
    reader: str
    reader_options: Mapping[str, Any]
    tiers: tuple[Tier, ...]
    recall_reconsolidates: bool

    def __post_init__(self) -> None:
        if not self.tiers:
            raise InvalidArgument("config: at least one tier is needed")
        if self.tiers[0].scale != 1.0 or self.tiers[0].after_pages or self.tiers[0].after_days:
            raise InvalidArgument("config: the first tier is where pages start: scale 1.0 and no after_* trigger")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"config: tier names must be unique, got {names}")
        for upper, lower in zip(self.tiers, self.tiers[1:], strict=False):
            if lower.scale > upper.scale:
                raise InvalidArgument(f"config: tier {lower.name!r} is sharper than {upper.name!r} above it")
            if lower.cell and upper.cell and (lower.cell[0] > upper.cell[0] or lower.cell[1] > upper.cell[1]):
                raise InvalidArgument(
                    f"config: tier {lower.name!r} has larger cells ({lower.cell[0]} x {lower.cell[1]} pixels) "
                    f"than {upper.name!r} above it ({upper.cell[0]} x {upper.cell[1]}); cells shrink down the tiers"
                )
            if lower.after_pages is None and lower.after_days is None:
                raise InvalidArgument(f"config: tier {lower.name!r} needs after_pages or after_days")

    def with_archive(self, path: str | os.PathLike[str]) -> Config:
        return replace(self, archive=replace(self.archive, path=Path(path).expanduser(), url=None))


# The tables of a config file, as TOML gives them: strict types, no unknown keys. ----------------------
_STRICT = ConfigDict(strict=True, extra="forbid")


class _PageTable(BaseModel):
    model_config = _STRICT
    columns: int = Field(ge=1)
    rows: int = Field(ge=1)
    font_size: int = Field(ge=6, le=64)


class _ArchiveTable(BaseModel):
    model_config = _STRICT
    path: str | None = None
    url: str | None = None
    map_size_mib: int = Field(ge=1)
    max_map_size_mib: int = Field(ge=1)
    busy_timeout_s: float = Field(ge=0, le=3600)


class _LimitsTable(BaseModel):
    model_config = _STRICT
    max_text_chars: int = Field(ge=1)
    max_pages_per_call: int = Field(ge=1)
    max_list_limit: int = Field(ge=1)


class _RecallTable(BaseModel):
    model_config = _STRICT
    reconsolidate: bool


class _ReaderTable(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


def _tier_table() -> type[BaseModel]:
    """The [[tiers]] table's model, made from `Tier`'s own fields, so the two never disagree."""
    hints = get_type_hints(Tier)
    hints["cell"] = list[int] | None  # a TOML array: Tier makes it a (width, height) tuple and checks it
    table: dict[str, Any] = {f.name: (hints[f.name], ... if f.default is MISSING else f.default) for f in fields(Tier)}
    return create_model("_TierTable", __config__=_STRICT, **table)


_TierTable: Any = _tier_table()


class _Tables(BaseModel):
    model_config = _STRICT
    page: _PageTable
    archive: _ArchiveTable
    limits: _LimitsTable
    recall: _RecallTable
    reader: _ReaderTable
    tiers: list[_TierTable] = Field(min_length=1)  # type: ignore[valid-type]  # made at import, from Tier


def _describe(error: ValidationError) -> str:
    """'[recall] reconsolidate: Input should be a valid boolean (got 'no')' for each problem."""
    problems = []
    for item in error.errors():
        where = [str(part) for part in item["loc"]]
        if where and where[0] == "tiers" and len(where) > 1:
            table = f"[[tiers]] #{int(where[1]) + 1}"
            key = ".".join(where[2:])
        else:
            table = f"[{where[0]}]" if where else "config"
            key = ".".join(where[1:])
        given = f" (got {item['input']!r})" if item["type"] != "missing" else ""
        hint = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        problems.append(f"{table} {key}: {hint}{given}".replace("  ", " "))
    return "; ".join(problems)


def default_archive_path() -> Path:
    """The user's data dir: XDG on Linux, Application Support on macOS, LOCALAPPDATA on Windows."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "optical-memory" / "archive"


@cache
def _default_text() -> str:
    packaged = resources.files("optical_memory") / "default.toml"
    if packaged.is_file():  # installed wheel: config/default.toml is packaged here
        return packaged.read_text(encoding="utf-8")
    source = Path(__file__).resolve().parent.parent / "config" / "default.toml"  # source tree / editable
    return source.read_text(encoding="utf-8")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _reader_options(options: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The reader's constructor options, with `api_key_env` resolved to `api_key` from the environment."""
    resolved = dict(options)
    key_env = resolved.pop("api_key_env", None)
    if key_env and "api_key" not in resolved:
        resolved["api_key"] = env.get(str(key_env))
    return resolved


def _validated(data: Mapping[str, Any], source: str) -> _Tables:
    unknown = sorted(set(data) - set(_Tables.model_fields))
    if unknown:
        valid = sorted(_Tables.model_fields)
        raise InvalidArgument(f"config {source}: unknown tables {unknown}; valid tables are {valid}")
    try:
        return _Tables.model_validate(data)
    except ValidationError as exc:
        raise InvalidArgument(f"config {source}: {_describe(exc)}") from None


def _archive_url(archive: object, env: Mapping[str, str], from_file: str | None) -> str | None:
    """The PostgreSQL URL in force: an explicit folder, or the environment's folder, overrides a URL below it."""
    if archive:
        return None
    url, source = env.get(ENV_PREFIX + "ARCHIVE_URL"), f"{ENV_PREFIX}ARCHIVE_URL"
    if not url:
        url, source = (None if env.get(ENV_PREFIX + "ARCHIVE") else from_file), "[archive] url"
    if url and not url.startswith(("postgresql://", "postgres://")):  # never echoed: it may hold a password
        raise InvalidArgument(f"{source} must be a postgresql:// URL; the one given has another scheme")
    return url or None


def load_config(
    path: str | os.PathLike[str] | None = None,
    archive: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Defaults, then the TOML at `path` (or $OPTICAL_MEMORY_CONFIG), then env vars, then `archive`."""
    env = os.environ if environ is None else environ
    data = tomllib.loads(_default_text())
    user_path = path or env.get(ENV_PREFIX + "CONFIG")
    source = "defaults"
    if user_path:
        try:
            user = tomllib.loads(Path(user_path).expanduser().read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"config file {user_path}: {exc}") from exc
        data = _merge(data, user)
        source = f"file {user_path}"
    tables = _validated(data, source)
    try:
        tiers = tuple(Tier(**table.model_dump()) for table in tables.tiers)
        page = PageFormat(tables.page.columns, tables.page.rows)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"config {source}: {exc}") from exc
    archive_path = archive or env.get(ENV_PREFIX + "ARCHIVE") or tables.archive.path
    archive_url = _archive_url(archive, env, tables.archive.url)
    return Config(
        archive=ArchiveConfig(
            path=Path(archive_path).expanduser() if archive_path else default_archive_path(),
            map_size_mib=tables.archive.map_size_mib,
            max_map_size_mib=tables.archive.max_map_size_mib,
            busy_timeout_s=tables.archive.busy_timeout_s,
            url=archive_url,
        ),
        page=page,
        font_size=tables.page.font_size,
        limits=LimitsConfig(**tables.limits.model_dump()),
        reader=env.get(ENV_PREFIX + "READER") or tables.reader.name,
        reader_options=_reader_options(tables.reader.options, env),
        tiers=tiers,
        recall_reconsolidates=tables.recall.reconsolidate,
    )


def default_config(archive: str | os.PathLike[str]) -> Config:
    """The shipped defaults for an archive at `archive`, ignoring the environment (libraries, tests)."""
    return load_config(archive=archive, environ={})
