"""Text the generator lays onto pages: the kinds of thing an agent remembers, plus the awkward cases.

Every source is a function `(rng) -> list of logical lines`. Nothing here touches pixels; labels
come later, from the page encoding itself. Sources: Python source code (from the standard library,
split by module into a training and a held-out half), prose, logs with ids and timestamps, markdown
tables, random printable runs, every escape form of the page encoding (characters the font cannot
draw, tabs, CR, trailing spaces, the escape mark itself), and the non-ASCII characters the font draws.
"""

from __future__ import annotations

import functools
import os
import random
import string
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from optical_memory.alphabet import ALPHABET, ESCAPE

__all__ = [
    "IDENTIFIER_MIX",
    "MIXES_FOR_TRAINING",
    "REALISTIC_MIX",
    "RECALL_TRAINING_MIX",
    "SOURCES",
    "TRAINING_MIX",
    "Split",
    "mixed_lines",
]

Split = Literal["train", "heldout"]
Source = Callable[[random.Random, Split], list[str]]

_WORD_TEXT = """
the of and to in is that it for was on are as with his they be at one have this from or had by not
word but what some we can out other were all there when up use your how said an each she which do
their time if will way about many then them write would like so these her long make thing see him
two has look more day could go come did number sound no most people my over know water than call
first who may down side been now find memory page tier reader archive session agent model token
image render cold warm hot fade remember recall context window server client request response error
retry timeout config deploy build test commit branch merge review issue function class module import
return value string integer list dictionary query index cache latency throughput benchmark accuracy
training dataset epoch gradient loss
"""
_WORDS = tuple(_WORD_TEXT.split())
_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "oscar", "trent")
_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL", "TRACE")
_ACCENTED = "àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞŁłŒœŠšŽžčćďěňřťůźżąęńśğışİ"
_ASCII_PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
_NON_ASCII = "".join(ch for ch in ALPHABET if ord(ch) > 0x7E and ch != ESCAPE)
# Characters the font cannot draw: CJK, kana, hangul, emoji; combining marks, controls; lone
# surrogates, private use, anything astral. Each becomes an escape form on the page.
_UNDRAWABLE_RANGES = (
    *((0x4E00, 0x9FFF), (0x3040, 0x30FF), (0xAC00, 0xD7A3), (0x1F300, 0x1F6FF)),
    *((0x300, 0x36F), (0x0, 0x1F), (0x7F, 0x9F)),
    *((0xD800, 0xDFFF), (0xE000, 0xF8FF), (0x10000, 0x10FFFF)),
)


def _word(rng: random.Random) -> str:
    return rng.choice(_WORDS)


def _identifier(rng: random.Random) -> str:
    parts = [_word(rng) for _ in range(rng.randint(1, 3))]
    style = rng.random()
    if style < 0.5:
        return "_".join(parts)
    if style < 0.8:
        return parts[0] + "".join(p.title() for p in parts[1:])
    return "".join(p.title() for p in parts)


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


@functools.cache
def _stdlib_files(split: Split) -> tuple[Path, ...]:
    root = Path(os.__file__).parent
    files = sorted(root.glob("*.py"))
    held = [f for f in files if zlib.crc32(f.name.encode()) % 4 == 0]
    return tuple(held if split == "heldout" else [f for f in files if f not in held])


def code(rng: random.Random, split: Split) -> list[str]:
    """A run of consecutive lines from a standard-library module (tabs and all)."""
    files = _stdlib_files(split)
    if not files:
        return prose(rng, split)
    lines = rng.choice(files).read_text(encoding="utf-8", errors="replace").split("\n")
    start = rng.randrange(max(1, len(lines) - 20))
    return lines[start : start + rng.randint(5, 40)]


def prose(rng: random.Random, split: Split) -> list[str]:
    out = []
    for _ in range(rng.randint(1, 8)):
        sentences = []
        for _ in range(rng.randint(1, 6)):
            words = [_word(rng) for _ in range(rng.randint(3, 18))]
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words)), f'"{_word(rng)}"')
            if rng.random() < 0.15:
                words.insert(rng.randrange(len(words)), f"({rng.randint(0, 9999)})")
            if rng.random() < 0.1:
                words.insert(rng.randrange(len(words)), rng.choice(_NAMES).title() + "'s")
            sentences.append(" ".join(words).capitalize() + rng.choice(".....!?;:"))
        out.append(" ".join(sentences))
        if rng.random() < 0.3:
            out.append("")
    return out


def logs(rng: random.Random, split: Split) -> list[str]:
    out = []
    t = rng.randint(1_600_000_000, 1_900_000_000)
    for _ in range(rng.randint(3, 30)):
        t += rng.randint(0, 5000)
        day = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        stamp = f"{day}T{t % 86400 // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"
        stamp += rng.choice(["", f".{rng.randint(0, 999):03d}", f".{rng.randint(0, 999999):06d}Z", "Z", "+02:00"])
        fields = [
            f"req={_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}",
            f"user={rng.choice(_NAMES)}",
            f"ip={rng.randint(1, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
            f"latency_ms={rng.uniform(0, 5000):.{rng.randint(0, 3)}f}",
            f"status={rng.choice([200, 201, 204, 301, 400, 401, 403, 404, 409, 500, 502, 503])}",
            f"path=/{'/'.join(_word(rng) for _ in range(rng.randint(1, 4)))}",
            f"sha={_hex(rng, rng.choice([7, 12, 40]))}",
            f"pid={rng.randint(1, 99999)}",
        ]
        rng.shuffle(fields)
        level, source = rng.choice(_LEVELS), _identifier(rng)
        line = f"{stamp} {level:<5} [{source}] {' '.join(_word(rng) for _ in range(rng.randint(1, 8)))}"
        line += " " + " ".join(fields[: rng.randint(0, 5)])
        out.append(line)
    return out


def table(rng: random.Random, split: Split) -> list[str]:
    n_cols = rng.randint(2, 7)
    header = [_identifier(rng) for _ in range(n_cols)]
    aligns = [rng.choice(["---", ":---", "---:", ":---:", "-" * rng.randint(3, 10)]) for _ in range(n_cols)]

    def cell() -> str:
        kind = rng.random()
        if kind < 0.3:
            return str(rng.randint(-10000, 100000))
        if kind < 0.5:
            return f"{rng.uniform(-1000, 1000):.{rng.randint(1, 4)}f}"
        if kind < 0.6:
            return f"`{_identifier(rng)}`"
        return " ".join(_word(rng) for _ in range(rng.randint(1, 4)))

    rows = [header, aligns] + [[cell() for _ in range(n_cols)] for _ in range(rng.randint(1, 15))]
    pad = rng.random() < 0.5
    return ["| " + " | ".join(c.ljust(12) if pad else c for c in r) + " |" for r in rows]


def printable(rng: random.Random, split: Split) -> list[str]:
    """Random runs: printable ASCII, or anything the font draws (so every class is seen often)."""
    pool = _ASCII_PRINTABLE if rng.random() < 0.5 else ALPHABET
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 250))) for _ in range(rng.randint(1, 12))]


def ascii_runs(rng: random.Random, split: Split) -> list[str]:
    """Random runs of printable ASCII only (passwords, hashes, line noise)."""
    return [
        "".join(rng.choice(_ASCII_PRINTABLE) for _ in range(rng.randint(0, 250))) for _ in range(rng.randint(1, 12))
    ]


def escapes(rng: random.Random, split: Split) -> list[str]:
    """Text with undrawable characters, tabs, CR, trailing spaces, look-alikes and the escape mark."""
    out = []
    for _ in range(rng.randint(1, 10)):
        parts = []
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            if kind < 0.35:
                parts.append(_word(rng))
            elif kind < 0.6:
                low, high = rng.choice(_UNDRAWABLE_RANGES)
                parts.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 4))))
            elif kind < 0.7:
                parts.append(rng.choice(["\t", "\t\t", "\r", ESCAPE, "\u00a0", "\u200b", "А", "Ε", "\ufeff"]))
            else:
                parts.append(" ")
        line = "".join(parts)
        if rng.random() < 0.3:
            line += " " * rng.randint(1, 3)
        out.append(line)
    return out


def non_ascii(rng: random.Random, split: Split) -> list[str]:
    """Words in accented Latin, Greek and Cyrillic; box drawing, arrows and maths the font draws."""
    out = []
    for _ in range(rng.randint(1, 10)):
        kind = rng.random()
        if kind < 0.4:
            words = []
            for _ in range(rng.randint(2, 14)):
                w = list(_word(rng))
                for i in range(len(w)):
                    if rng.random() < 0.3:
                        w[i] = rng.choice(_ACCENTED)
                words.append("".join(w))
            out.append(" ".join(words))
        elif kind < 0.7:
            out.append(
                " ".join(
                    "".join(rng.choice(_NON_ASCII) for _ in range(rng.randint(1, 9))) for _ in range(rng.randint(2, 14))
                )
            )
        else:
            box = "".join(ch for ch in _NON_ASCII if 0x2500 <= ord(ch) <= 0x25FF)
            out.append("".join(rng.choice(box + " ") for _ in range(rng.randint(5, 100))))
    return out


_SURNAMES = (
    "Dröge",
    "Ærøskøbing",
    "Łukasiewicz",
    "Dvořák",
    "Þórðarson",
    "Ðorđević",
    "Šťastný",
    "Müller",
    "Øster",
    "Gößmann",
    "Ångström",
    "Nuñez",
    "François",
    "Çelik",
    "Žižek",
    "Kovačević",
    "Hạnh",
    "Wałęsa",
    "Sørensen",
    "Jiménez",
    "Ördögh",
    "Brontë",
    "Zoë",
    "Ìtàlì",
    "Ŝafranek",
    "Ğüneş",
    "Ĳsselmeer",
    "Crêpe",
    "Straße",
)
_GREEK = "αβγδεζηθιλνξπρστυφχψωάέήίόύώΓΔΘΛΞΠΣΦΨΩ"
_CYRILLIC = "бвгджзйлмнптфцчшщъыьэюяёБДЖЙЛУФЦЧШЩЭЮЯ"
_KEY_PREFIXES = ("sk-", "sk-proj-", "ghp_", "gho_", "xoxb-", "AKIA", "AIza", "pk_live_", "rk_test_", "glpat-", "")
_B62 = string.ascii_letters + string.digits


def _foreign_word(rng: random.Random) -> str:
    pool = rng.choice((_GREEK, _CYRILLIC, _ACCENTED))
    return "".join(rng.choice(pool) for _ in range(rng.randint(2, 11)))


def _fact_value(rng: random.Random) -> str:
    """One value of the kinds agents must recall exactly."""
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice(_KEY_PREFIXES) + "".join(rng.choice(_B62 + "_-") for _ in range(rng.randint(16, 48)))
    if kind == 1:
        return _hex(rng, rng.choice([7, 8, 12, 16, 32, 40, 64]))
    if kind == 2:
        return "-".join(_hex(rng, n) for n in (8, 4, 4, 4, 12))
    if kind == 3:
        parts = [rng.choice(("src", "lib", "usr", "opt", "home", "var", "pkg", "internal"))]
        parts += [_identifier(rng) for _ in range(rng.randint(1, 4))]
        version = f"{rng.randint(0, 30)}.{rng.randint(0, 40)}.{rng.randint(0, 200)}"
        if rng.random() < 0.3:
            version += rng.choice(("-rc1", "-beta.2", "+build.7", "a3", ".post1"))
        parts.insert(rng.randint(1, len(parts)), f"{_word(rng)}-{version}")
        return "/" + "/".join(parts) + rng.choice(("", ".py", ".ts", ".rs", ".go", ".toml", ".json", "/"))
    if kind == 4:
        return f"{rng.choice(('localhost', '127.0.0.1', '0.0.0.0', 'db.internal'))}:{rng.randint(1, 65535)}"
    if kind == 5:
        words = [_word(rng).title() for _ in range(rng.randint(2, 4))]
        return "".join(words) if rng.random() < 0.5 else "_".join(w.lower() for w in words)
    if kind == 6:
        return f"{rng.choice(_NAMES).title()} {rng.choice(_SURNAMES)}"
    if kind == 7:
        return " ".join(_foreign_word(rng) for _ in range(rng.randint(1, 4)))
    return "".join(rng.choice(_B62) for _ in range(rng.randint(6, 30)))


def recall(rng: random.Random, split: Split) -> list[str]:
    """What agents recall: keys, hex, UUIDs, versioned paths, Camel/snake names, accented names, quotes."""
    quotes = (("‘", "’"), ("“", "”"), ("`", "`"), ('"', '"'), ("'", "'"), ("«", "»"), ("``", "``"))
    out = []
    for _ in range(rng.randint(1, 10)):
        label = rng.choice(
            (
                "API key",
                "token",
                "commit",
                "request id",
                "path",
                "port",
                "owner",
                "class",
                "function",
                "contact",
                "city",
                "hash",
                "setting",
                "name",
                "secret",
            )
        )
        left, right = rng.choice(quotes)
        value = _fact_value(rng)
        form = rng.randrange(5)
        if form == 0:
            line = f"The {label} is {left}{value}{right}."
        elif form == 1:
            line = f"{_identifier(rng).upper()}={value}"
        elif form == 2:
            line = f"- {label}: {left}{value}{right} ({rng.choice(_SURNAMES)}, {_foreign_word(rng)})"
        elif form == 3:
            line = f"{_word(rng).capitalize()} {' '.join(_word(rng) for _ in range(rng.randint(0, 6)))} {value}"
        else:
            line = f"“{' '.join(_fact_value(rng) for _ in range(rng.randint(1, 3)))}” — {rng.choice(_SURNAMES)}’s note"
        out.append(line)
    return out


def markdown(rng: random.Random, split: Split) -> list[str]:
    out = [rng.choice(["#", "##", "###"]) + " " + " ".join(_word(rng) for _ in range(rng.randint(1, 6))).title(), ""]
    for _ in range(rng.randint(2, 10)):
        kind = rng.random()
        words = " ".join(_word(rng) for _ in range(rng.randint(2, 15)))
        if kind < 0.4:
            out.append(rng.choice(["- ", "* ", "  - ", "1. ", "- [ ] ", "- [x] "]) + words)
        elif kind < 0.6:
            out.append(f"> {words}")
        elif kind < 0.8:
            out.append(
                f"See [{_word(rng)}](https://{_word(rng)}.example.com/"
                f"{_hex(rng, 6)}?q={_word(rng)}&n={rng.randint(0, 99)})"
            )
        else:
            out.append(f"**{_word(rng)}**: `{_identifier(rng)}()` returns _{words}_")
    return out


def symbols(rng: random.Random, split: Split) -> list[str]:
    """Punctuation-heavy runs: quotes, brackets, pipes and operators that OCR likes to drop."""
    pool = string.punctuation + "  " + string.digits
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 120))) for _ in range(rng.randint(1, 8))]


SOURCES: dict[str, Source] = {
    "code": code,
    "prose": prose,
    "logs": logs,
    "table": table,
    "markdown": markdown,
    "printable": printable,
    "escapes": escapes,
    "non_ascii": non_ascii,
    "symbols": symbols,
    "ascii_runs": ascii_runs,
    "recall": recall,
}
Mix = dict[str, float]

# Training: a fifth of the blocks are random runs, half of them over the whole alphabet, so every
# class (and every look-alike pair the font barely tells apart) is seen thousands of times.
TRAINING_MIX: Mix = {
    "code": 0.18,
    "prose": 0.14,
    "logs": 0.12,
    "table": 0.08,
    "markdown": 0.06,
    "printable": 0.20,
    "escapes": 0.08,
    "non_ascii": 0.09,
    "symbols": 0.05,
    "ascii_runs": 0.0,
    "recall": 0.0,
}
# Evaluation of what dialogue holds: the same, with the random runs printable ASCII only. Uniform
# runs over the whole alphabet (85 % accented capitals, Greek, box drawing) are the stress mix.
REALISTIC_MIX: Mix = {**TRAINING_MIX, "printable": 0.0, "ascii_runs": 0.10}
# The new reader's training: a quarter of the blocks are the values agents recall (issue 16).
RECALL_TRAINING_MIX: Mix = {**TRAINING_MIX, "printable": 0.14, "code": 0.13, "prose": 0.10, "recall": 0.22}
# Evaluation of what agents must get exactly right: mostly recalled values, within ordinary text.
IDENTIFIER_MIX: Mix = {**REALISTIC_MIX, "recall": 0.6, "non_ascii": 0.1}
MIXES_FOR_TRAINING: dict[str, Mix] = {"training": TRAINING_MIX, "recall": RECALL_TRAINING_MIX}


def mixed_lines(rng: random.Random, split: Split = "train", min_lines: int = 80, mix: Mix | None = None) -> list[str]:
    """Lines from randomly chosen sources, in blocks, until at least `min_lines` (more than a page)."""
    mix = mix or TRAINING_MIX
    names = list(mix)
    weights = [mix[n] for n in names]
    lines: list[str] = []
    while len(lines) < min_lines:
        lines.extend(SOURCES[rng.choices(names, weights)[0]](rng, split))
    return lines
