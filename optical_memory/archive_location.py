"""Where the archive is, found without the typed config: for the capture hook, which must start fast.

`config.load_config` validates the whole configuration with pydantic and builds the tiers (numpy):
about 150 ms that a hook, started afresh at every turn of an agent, cannot spend. This finds only
the archive's folder and the settings it is opened with, from the same sources and by the same
precedence as `load_config`:

    --archive PATH, then OPTICAL_MEMORY_ARCHIVE_URL, then OPTICAL_MEMORY_ARCHIVE, then the config
    file's (--config, else OPTICAL_MEMORY_CONFIG) [archive] url or path over config/default.toml's,
    then the user's data dir.

It answers None wherever the answer is not plain: a PostgreSQL archive (a url), a config file that
cannot be read, an [archive] value of the wrong type, a default config it cannot find. The caller
then takes `load_config`, which says exactly what is wrong. Tests check that the two agree.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ArchiveLocation", "archive_location", "default_archive_path"]

ENV_PREFIX = "OPTICAL_MEMORY_"  # as config.ENV_PREFIX
# [archive] settings the archive is opened with: (integral, least, most), as config's _ArchiveTable checks them
_SETTINGS = {
    "map_size_mib": (True, 1, float("inf")),
    "max_map_size_mib": (True, 1, float("inf")),
    "busy_timeout_s": (False, 0, 3600),
}


@dataclass(frozen=True)
class ArchiveLocation:
    """An LMDB archive folder and what `Archive` is opened with (config.ArchiveConfig's fields but url)."""

    path: Path
    map_size_mib: int
    max_map_size_mib: int
    busy_timeout_s: float


def default_archive_path() -> Path:
    """The user's data dir, as `config.default_archive_path` gives it (a test keeps them equal)."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "optical-memory" / "archive"


def archive_location(
    config_path: str | os.PathLike[str] | None = None,
    archive: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ArchiveLocation | None:
    """The LMDB archive `load_config(config_path, archive, environ)` would name; None where unsure."""
    env = os.environ if environ is None else environ
    table = _archive_table(config_path or env.get(ENV_PREFIX + "CONFIG"))
    if table is None:
        return None
    settings: dict[str, Any] = {}
    for key, (integral, least, most) in _SETTINGS.items():
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int if integral else int | float):
            return None
        if not least <= value <= most:
            return None  # load_config says what is wrong with it
        settings[key] = value
    postgres = env.get(ENV_PREFIX + "ARCHIVE_URL") or (table.get("url") and not env.get(ENV_PREFIX + "ARCHIVE"))
    if postgres and not archive:
        return None  # a PostgreSQL archive: the hook takes the full path
    path = archive or env.get(ENV_PREFIX + "ARCHIVE") or table.get("path")
    if path is not None and not isinstance(path, str | os.PathLike):
        return None
    folder = Path(path).expanduser() if path else default_archive_path()
    return ArchiveLocation(folder, settings["map_size_mib"], settings["max_map_size_mib"], settings["busy_timeout_s"])


def _archive_table(user_path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The [archive] table of the defaults with the user file's over it; None if either cannot be read."""
    try:
        table = dict(tomllib.loads(_default_file().read_text(encoding="utf-8"))["archive"])
        if user_path:
            user = tomllib.loads(Path(user_path).expanduser().read_text(encoding="utf-8")).get("archive", {})
            if not isinstance(user, dict):
                return None
            table.update(user)
    except (OSError, KeyError, TypeError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return table


def _default_file() -> Path:
    """config/default.toml where `config._default_text` finds it: packaged beside us, or the source tree's."""
    here = Path(__file__).resolve().parent
    packaged = here / "default.toml"
    return packaged if packaged.is_file() else here.parent / "config" / "default.toml"
