"""Configuration: one source of defaults (the TOML), strict types, errors that name the key and what is valid."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from optical_memory.config import Config, default_config, load_config
from optical_memory.errors import InvalidArgument


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "user.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults_come_from_the_toml_alone(tmp_path: Path) -> None:
    config = default_config(tmp_path / "a")
    assert [tier.name for tier in config.tiers] == ["hot", "warm", "cool", "cold", "frost"]
    # no dataclass carries a default of its own that could drift from the TOML
    for cls in (Config, type(config.archive), type(config.limits)):
        defaults = [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
        assert defaults == [], (cls.__name__, defaults)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('[recall]\nreconsolidate = "no"', "[recall] reconsolidate: Input should be a valid boolean (got 'no')"),
        ('[archive]\nbusy_timeout_s = "soon"', "[archive] busy_timeout_s: Input should be a valid number"),
        ("[limits]\nmax_list_limit = 0", "[limits] max_list_limit: Input should be greater than or equal to 1"),
        ("[nope]\na = 1", "unknown tables ['nope']; valid tables are ['archive', 'limits', 'page'"),
        ("[page]\ncolumnz = 80", "[page] columnz: unknown key"),
        ('[[tiers]]\nname = "hot"\nscale = 1.0\ncodec = "gif"', "[[tiers]] #1 codec: Input should be 'png'"),
        ('[[tiers]]\nname = "hot"\nscale = 1.0\n[[tiers]]\nname = "x"\nscale = 0.5', "tier 'x' needs after_pages"),
        ("[page]\ncolumns = 5", "a page needs at least"),
        (
            '[[tiers]]\nname = "hot"\nscale = 1.0\n[[tiers]]\nname = "x"\nscale = 0.2\ncell = [2]\nafter_pages = 5',
            "tier 'x': cell must be two whole numbers of pixels [width, height], each 1 or more, got [2]",
        ),
        (
            '[[tiers]]\nname = "hot"\nscale = 1.0\n[[tiers]]\nname = "x"\nscale = 0.2\ncell = [2, 0]\nafter_pages = 5',
            "tier 'x': cell must be two whole numbers of pixels [width, height], each 1 or more, got [2, 0]",
        ),
        (
            '[[tiers]]\nname = "hot"\nscale = 1.0\n[[tiers]]\nname = "x"\nscale = 0.2\ncell = [2, "4"]'
            "\nafter_pages = 5",
            "[[tiers]] #2 cell.1: Input should be a valid integer",
        ),
        (
            '[[tiers]]\nname = "hot"\nscale = 1.0\n[[tiers]]\nname = "x"\nscale = 0.4\ncell = [4, 7]\nafter_pages = 5'
            '\n[[tiers]]\nname = "y"\nscale = 0.3\ncell = [3, 8]\nafter_pages = 9',
            "tier 'y' has larger cells (3 x 8 pixels) than 'x' above it (4 x 7); cells shrink down the tiers",
        ),
        ("this is not toml", "config file"),
    ],
)
def test_a_bad_setting_names_its_key_and_what_is_valid(tmp_path: Path, body: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        load_config(write(tmp_path, body), archive=tmp_path / "a", environ={})
    assert says in str(info.value)


def test_a_user_file_overrides_and_the_environment_wins(tmp_path: Path) -> None:
    user = write(tmp_path, '[reader]\nname = "template"\n[limits]\nmax_list_limit = 50')
    config = load_config(environ={"OPTICAL_MEMORY_CONFIG": str(user), "OPTICAL_MEMORY_READER": "rapidocr"})
    assert config.limits.max_list_limit == 50 and config.reader == "rapidocr"
    assert config.limits.max_text_chars == default_config(tmp_path).limits.max_text_chars
