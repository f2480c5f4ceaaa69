"""Typed configuration: the default TOML (config/default.toml), a user TOML over it, then the environment.

This is the only module that reads the environment. Variables:

* ``OPTICAL_MEMORY_CONFIG``  path of a TOML file whose tables override the defaults
* ``OPTICAL_MEMORY_ARCHIVE`` archive folder (also ``--archive PATH`` on the CLI)
* ``OPTICAL_MEMORY_READER``  reader name (``trained``, ``rapidocr``, ``template``, ...)
* ``OPTICAL_MEMORY_TOKEN``   bearer token of the HTTP transport (else one is generated into the archive)
* the variable named by ``[reader.options] api_key_env``, if any: its value becomes the reader's
  ``api_key`` option (the endpoint reader's key stays out of the config file)

A user file's ``[[tiers]]`` list replaces the default list as a whole.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from optical_memory.errors import InvalidArgument
from optical_memory.pages import PageFormat
from optical_memory.tiers import Tier

__all__ = ["ArchiveConfig", "Config", "LimitsConfig", "default_archive_path", "load_config"]

ENV_PREFIX = "OPTICAL_MEMORY_"


@dataclass(frozen=True)
class ArchiveConfig:
    path: Path
    map_size_mib: int = 32768
    max_map_size_mib: int = 1048576
    busy_timeout_s: float = 10.0


@dataclass(frozen=True)
class LimitsConfig:
    max_text_chars: int = 2_000_000
    max_pages_per_call: int = 500
    max_list_limit: int = 200


@dataclass(frozen=True)
class Config:
    archive: ArchiveConfig
    page: PageFormat = field(default_factory=PageFormat)
    font_size: int = 16
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    reader: str = "trained"
    reader_options: Mapping[str, Any] = field(default_factory=dict)
    tiers: tuple[Tier, ...] = (Tier("hot", 1.0),)
    http_token: str | None = None
    recall_reconsolidates: bool = False

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
            if lower.after_pages is None and lower.after_days is None:
                raise InvalidArgument(f"config: tier {lower.name!r} needs after_pages or after_days")

    def with_archive(self, path: str | os.PathLike[str]) -> Config:
        return replace(self, archive=replace(self.archive, path=Path(path).expanduser()))


def default_archive_path() -> Path:
    """The user's data dir: XDG on Linux, Application Support on macOS, LOCALAPPDATA on Windows."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "optical-memory" / "archive"


def _default_toml() -> dict[str, Any]:
    packaged = resources.files("optical_memory") / "default.toml"
    if packaged.is_file():  # installed wheel: config/default.toml is packaged here
        return tomllib.loads(packaged.read_text(encoding="utf-8"))
    source = Path(__file__).resolve().parent.parent / "config" / "default.toml"  # source tree / editable
    return tomllib.loads(source.read_text(encoding="utf-8"))


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _table(data: Mapping[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
    table = dict(data.get(name, {}))
    unknown = set(table) - allowed
    if unknown:
        raise InvalidArgument(f"config [{name}]: unknown keys {sorted(unknown)}; valid keys are {sorted(allowed)}")
    return table


def _reader_options(options: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The reader's constructor options, with `api_key_env` resolved to `api_key` from the environment."""
    resolved = dict(options)
    key_env = resolved.pop("api_key_env", None)
    if key_env and "api_key" not in resolved:
        resolved["api_key"] = env.get(str(key_env))
    return resolved


def load_config(
    path: str | os.PathLike[str] | None = None,
    archive: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Defaults, then the TOML at `path` (or $OPTICAL_MEMORY_CONFIG), then env vars, then `archive`."""
    env = os.environ if environ is None else environ
    data = _default_toml()
    user_path = path or env.get(ENV_PREFIX + "CONFIG")
    if user_path:
        try:
            user = tomllib.loads(Path(user_path).expanduser().read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"config file {user_path}: {exc}") from exc
        data = _merge(data, user)

    page = _table(data, "page", {"columns", "rows", "font_size"})
    archive_table = _table(data, "archive", {"path", "map_size_mib", "max_map_size_mib", "busy_timeout_s"})
    limits = _table(data, "limits", {f.name for f in fields(LimitsConfig)})
    reader = _table(data, "reader", {"name", "options"})
    recall = _table(data, "recall", {"reconsolidate"})
    try:
        tiers = tuple(Tier(**tier) for tier in data.get("tiers", []))
    except TypeError as exc:
        raise InvalidArgument(f"config [[tiers]]: {exc}") from exc

    archive_path = archive or env.get(ENV_PREFIX + "ARCHIVE") or archive_table.pop("path", None)
    archive_table.pop("path", None)
    try:
        return Config(
            archive=ArchiveConfig(
                Path(archive_path).expanduser() if archive_path else default_archive_path(), **archive_table
            ),
            page=PageFormat(page.get("columns", 100), page.get("rows", 64)),
            font_size=int(page.get("font_size", 16)),
            limits=LimitsConfig(**limits),
            reader=env.get(ENV_PREFIX + "READER") or reader.get("name", "trained"),
            reader_options=_reader_options(reader.get("options", {}), env),
            tiers=tiers,
            http_token=env.get(ENV_PREFIX + "TOKEN") or None,
            recall_reconsolidates=bool(recall.get("reconsolidate", False)),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"config: {exc}") from exc
