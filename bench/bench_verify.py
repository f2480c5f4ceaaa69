"""Verified reading, tier by tier: how many lines come back exact and verified, and what it costs.

    python -m bench.bench_verify                                  # both mixes, 12 pages each, default tiers
    python -m bench.bench_verify --pages 200 --workers 16 --pin   # many pages in parallel; timed on 2 cores
    python -m bench.bench_verify --model runs/reader/reader.onnx  # another reader (exported with top-k)
    python -m bench.bench_verify --no-terms                       # without the search index's guidance only
    python -m bench.bench_verify --extra-tier ice=0.17/16 --extra-tier ice2=0.15/24   # tiers colder than the last
    python -m bench.bench_verify --tier cold=0.35/8 --only cold --only frost   # another cold, frost faded from it

Pages are made as `Memory.remember` makes them (`pages.plan_entry`, `render`, the check codes of
`checkcode`), stored at the hot tier and faded with `tiers.demote` through the default tiers, then
read back with `transcribe.transcribe_lines`, the function `read_lines` and `search` call. Two
held-out mixes: the realistic mix of the reader's evaluation (`training.corpus.REALISTIC_MIX`, the
held-out split) and an identifier-heavy mix made here (keys, hex, UUIDs, hosts and ports, versioned
paths, snake_case and CamelCase, names with accents, Greek, Cyrillic, curly quotes, backticks).

Each page also gets what the archive's search index keeps of it (`search.index_lines`: the terms of
each line piece cut by `terms.terms`, hashed under a term key of the bench archive key, as an entry
`postings.page_entry`), so verified decoding is guided by it as it is in an archive (`term_guide`);
the decoder never sees the text. Each line is verified both ways in one run, with the index's
guidance and without it (as pages with no index entry read), unless `--no-terms`.

Per tier: CER (`metrics.cer_per_line`) of the argmax reading and after verified decoding; lines
verified; lines wrong but marked verified (must be 0; the hash bound for the lines checked is
printed); the read of a full page (every line), p50/p95 ms, without and with verification, on the
reader's `--threads` onnxruntime threads (`--pin` pins the timing to CPUs 0-1: 2 cores). RapidOCR and
Tesseract read `--compare-pages` pages of each mix beside it: their one reading is checked against
the code (no alternatives to search).

`--extra-tier NAME=SCALE/LEVELS` (repeatable) measures a candidate tier one step colder than the
chain's last: each candidate is demoted from the last tier's stored image, as fading would make it,
and encoded with the last tier's codec at its own scale (of the hot rendering) and grey levels;
candidates do not chain into each other. `--tier NAME=SCALE/LEVELS` (repeatable) measures another chain:
the configured one with that tier's scale and grey levels changed, every tier below it faded from what it
stores (as an archive written with that config would be); `--only NAME` (repeatable) reads just those
tiers (the others are still made: each tier is faded from the one above). Every tier's row also prints
its stored bytes per character (image bytes over the characters of the page's lines), since a colder
tier is only worth having if it stores fewer bytes than the one above.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import platform
import random
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

if __package__ in (None, ""):  # run as a script: make the repository root importable (bench.common)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from optical_memory.archive import ArchiveTxn
from optical_memory.checkcode import CODE_BYTES, codes_for, line_key, part_codes_for
from optical_memory.config import load_config
from optical_memory.metrics import edit_distance
from optical_memory.pages import PageFormat, plan_entry
from optical_memory.postings import page_entry
from optical_memory.readers.base import Reader
from optical_memory.readers.trained import TrainedReader
from optical_memory.records import PageRecord
from optical_memory.render import Renderer
from optical_memory.term_guide import PageTerms
from optical_memory.terms import TermHasher, terms
from optical_memory.tiers import Tier, demote, encode_image
from optical_memory.training.corpus import REALISTIC_MIX, mixed_lines
from optical_memory.training.evaluate import HELDOUT_SEED
from optical_memory.training.generate import PREVIOUS_TIERS
from optical_memory.transcribe import transcribe_lines
from optical_memory.verify import MAX_CANDIDATES, PAGE_CANDIDATES

ARCHIVE_KEY = bytes(range(32))
KEY = line_key(ARCHIVE_KEY)


class _BenchArchive:
    """Stands in for a read transaction where only the archive's key is asked for (`TermHasher`)."""

    def archive_key(self) -> bytes:
        return ARCHIVE_KEY


TERM_HASHER = TermHasher(cast(ArchiveTxn, _BenchArchive()))


def index_entry(pieces: Sequence[str]) -> bytes:
    """The page's entry in the search index as `search.index_lines` writes it for lines 1, 2, ... `pieces`."""
    lengths, hashes = {}, {}
    for line, piece in enumerate(pieces, 1):
        cut = terms(piece)
        lengths[line] = len(cut)
        hashes.update((TERM_HASHER(term), None) for term in cut)
    return page_entry(lengths, hashes)


# The default tiers (config/default.toml), the defaults before whole-pixel cells (tiers by scale alone),
# and the lossless chain the defaults were before grey levels.
CHAINS: dict[str, tuple[Tier, ...]] = {
    "config": load_config(environ={}).tiers,
    "previous": PREVIOUS_TIERS,
    "lossless": (
        Tier("hot", 1.0, "png"),
        Tier("warm", 0.75, "webp", lossless=True, after_pages=8),
        Tier("cool", 0.5, "webp", lossless=True, after_pages=32),
        Tier("cold", 0.35, "webp", lossless=True, after_pages=128),
        Tier("frost", 0.21, "webp", lossless=True, after_pages=512),
    ),
}
_B62 = string.ascii_letters + string.digits
_NAMES = (
    "Dröge", "Ærøskøbing", "Dvořák", "Łukasz Żółć", "Þórður", "Müller", "Šťastný", "Ðorđe", "Françoise",
    "Ångström", "Øystein", "Bjørn", "Çelik", "Göteborg", "Jäätteenmäki", "Núñez", "Grüße", "Košice", "Señor",
)  # fmt: skip
_GREEK = "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώΓΔΘΛΞΠΣΦΨΩ"
_CYRILLIC = "абвгдежзийклмнопрстуфхцчшщъыьэюяБГДЖЗИЙЛПФЦЧШЩЭЮЯ"
_WORDS = ("deploy", "token", "cache", "session", "reader", "archive", "index", "user", "prod", "build", "config")


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _ident(rng: random.Random) -> str:
    parts = [rng.choice(_WORDS) for _ in range(rng.randint(1, 3))]
    return "_".join(parts) if rng.random() < 0.5 else parts[0] + "".join(p.title() for p in parts[1:])


def _fact(rng: random.Random) -> str:
    """One identifier-heavy fact of the kinds agents recall."""
    kind = rng.randrange(12)
    if kind == 0:
        return f'{_ident(rng).upper()}_KEY="sk-{_pick(rng, _B62, rng.choice([32, 48]))}"'
    if kind == 1:
        return f"commit {_pick(rng, '0123456789abcdef', rng.choice([7, 12, 40]))} by {rng.choice(_NAMES)}"
    if kind == 2:
        u = _pick(rng, "0123456789abcdef", 32)
        return f"id {u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
    if kind == 3:
        host = f"{rng.choice(_WORDS)}-{rng.randint(1, 99)}.{rng.choice(['internal', 'example.com', 'eu-west-1'])}"
        return f"{host}:{rng.randint(1024, 65535)}"
    if kind == 4:
        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"
        return f"/opt/{rng.choice(_WORDS)}-{version}/lib/python3.{rng.randint(8, 13)}/{_ident(rng)}.py"
    if kind == 5:
        return f"`{_ident(rng)}()` returns {rng.choice(['‘', '“', '`'])}{_ident(rng)}{rng.choice(['’', '”', '`'])}"
    if kind == 6:
        return f"{rng.choice(_NAMES)} ({_pick(rng, _GREEK, rng.randint(3, 9))})"
    if kind == 7:
        return f"{_pick(rng, _CYRILLIC, rng.randint(3, 10))} {_pick(rng, _CYRILLIC, rng.randint(2, 8))}"
    if kind == 8:
        return f"AKIA{_pick(rng, string.ascii_uppercase + string.digits, 16)} / ghp_{_pick(rng, _B62, 36)}"
    if kind == 9:
        return f"sha256:{_pick(rng, '0123456789abcdef', 64)}"
    if kind == 10:
        return f"{rng.randint(10, 250)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"“{rng.choice(_NAMES)}” — {_ident(rng)} = {rng.randint(0, 10**6)}"


def identifier_lines(rng: random.Random) -> list[str]:
    """A block of identifier-heavy lines: one to four facts a line, some long enough to wrap."""
    return [" ".join(_fact(rng) for _ in range(rng.choice([1, 1, 2, 3, 4]))) for _ in range(rng.randint(1, 12))]


def realistic_lines(rng: random.Random) -> list[str]:
    return mixed_lines(rng, "heldout", min_lines=rng.choice([1, 3, 10, 40]), mix=REALISTIC_MIX)


MIXES: dict[str, Callable[[random.Random], list[str]]] = {"realistic": realistic_lines, "identifiers": identifier_lines}


@dataclass
class BenchPage:
    images: list[tuple[Tier, bytes, PageRecord]]  # the page at each tier, hot first
    truth: list[str]  # the text of each line piece, in line order
    entry: bytes = b""  # its search-index entry (`index_entry`)

    def terms(self) -> PageTerms | None:
        """What reading gets from the index for this page (fresh: nothing is cached across reads)."""
        return PageTerms.of(self.entry, TERM_HASHER)


def extra_tier(spec: str, chain: Sequence[Tier]) -> Tier:
    """A candidate tier below the chain's last from "NAME=SCALE/LEVELS", in the last tier's codec."""
    last = chain[-1]
    name, _, rest = spec.partition("=")
    scale, _, levels = rest.partition("/")
    try:
        # when pages would move there (after_pages, after_days) is the config's choice, not the bench's
        tier = last.by_scale(name=name, scale=float(scale), levels=int(levels), after_pages=None, after_days=None)
    except ValueError as exc:
        raise ValueError(f"--extra-tier {spec!r}: give NAME=SCALE/LEVELS, e.g. ice=0.17/16 ({exc})") from None
    if not name or name in {t.name for t in chain}:
        raise ValueError(f"--extra-tier {spec!r}: name it, with a name none of {[t.name for t in chain]} has")
    if tier.scale > last.scale or (tier.scale == last.scale and tier.levels >= last.levels):
        raise ValueError(
            f"--extra-tier {spec!r}: colder than {last.name} ({last.scale:g}/{last.levels}) means a smaller scale, "
            "or the same scale with fewer grey levels"
        )
    return tier


def make_page(mix: str, seed: int, tiers: Sequence[Tier] = CHAINS["config"], extras: Sequence[Tier] = ()) -> BenchPage:
    """A full page of entries laid out as `remember` lays them, with its check codes, faded through `tiers`,
    then each of `extras` demoted from the last tier's image (each one tier below it, not below each other)."""
    rng = random.Random(seed)
    renderer = Renderer(PageFormat())
    planned, pieces = [], []
    open_rows: int | None = None
    open_lines = 0
    while True:
        lines = MIXES[mix](rng)
        plans = plan_entry(lines, lambda cont: "user · bench · 2026-11-26" + (" · cont." if cont else ""),
                           renderer.format, open_rows, open_lines)  # fmt: skip
        first = plans[0]
        planned.extend(first.rows)
        pieces.extend(first.pieces)
        open_rows, open_lines = len(planned), first.last_line or open_lines
        if first.sealed or len(plans) > 1:
            break
    geometry = renderer.geometry
    record = PageRecord(
        id="p1", number=1, session="bench", created="2026-11-26T00:00:00Z", updated="2026-11-26T00:00:00Z",
        geometry=geometry, codec="png", rows=[row.code for row in planned], lines=len(pieces),
        codes=codes_for(KEY, pieces), parts=part_codes_for(KEY, pieces),
    )  # fmt: skip
    data = encode_image(renderer.render(planned), tiers[0])
    images = [(tiers[0], data, record)]
    for tier in tiers[1:]:
        data, geometry = demote(data, geometry, tier)
        images.append((tier, data, dataclasses.replace(record, geometry=geometry, codec=tier.codec, tier=len(images))))
    for tier in extras:
        extra, below = demote(data, geometry, tier)
        images.append((tier, extra, dataclasses.replace(record, geometry=below, codec=tier.codec, tier=len(tiers))))
    return BenchPage(images, pieces, index_entry(pieces))


@dataclass
class Score:
    lines: int = 0
    chars: int = 0
    nbytes: int = 0  # the stored image's bytes
    edits_argmax: int = 0
    edits_verified: int = 0  # after verified decoding, guided by the page's index entry (unless --no-terms)
    verified: int = 0
    wrong_verified: int = 0
    exact: int = 0
    edits_unguided: int = 0  # the same without the index's guidance (pages with no entry read so)
    verified_unguided: int = 0
    wrong_unguided: int = 0
    times_plain: list[float] = field(default_factory=list)
    times_verified: list[float] = field(default_factory=list)
    times_unguided: list[float] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


def score_page(
    reader: Reader, page: BenchPage, verify: bool = True, guided: bool = True, only: frozenset[str] = frozenset()
) -> list[Score]:
    """Read every line of the page at every tier (those named in `only`, if any): the argmax reading, and the
    verified one with the page's index entry (`guided`) and without it (without `guided`, the unguided one
    stands for both)."""
    out = []
    numbers = range(1, len(page.truth) + 1)
    for _, data, record in read_images(page, only):
        s = Score(lines=len(page.truth), chars=sum(len(t) for t in page.truth), nbytes=len(data))
        plain = transcribe_lines(reader, record, data, numbers)
        unguided = transcribe_lines(reader, record, data, numbers, key=KEY) if verify else plain
        checked = transcribe_lines(reader, record, data, numbers, key=KEY, terms=page.terms()) if guided else unguided
        for truth, argmax, line, before in zip(page.truth, plain, checked, unguided, strict=True):
            s.edits_argmax += edit_distance(truth, argmax.text)
            s.edits_verified += edit_distance(truth, line.text)
            s.exact += line.text == truth
            s.verified += line.verified is True
            s.wrong_verified += line.verified is True and line.text != truth
            s.edits_unguided += edit_distance(truth, before.text)
            s.verified_unguided += before.verified is True
            s.wrong_unguided += before.verified is True and before.text != truth
        out.append(s)
    return out


def read_images(page: BenchPage, only: frozenset[str]) -> list[tuple[Tier, bytes, PageRecord]]:
    """The page's images at the tiers named in `only` (every tier when it is empty), hot first."""
    return [image for image in page.images if not only or image[0].name in only]


def time_page(
    reader: Reader, page: BenchPage, reps: int, only: frozenset[str] = frozenset()
) -> list[tuple[list[float], list[float], list[float]]]:
    """Per tier, full-page read times (ms): no verification, verified without and with the index entry."""
    numbers = range(1, len(page.truth) + 1)
    out = []
    for _, data, record in read_images(page, only):
        times: tuple[list[float], list[float], list[float]] = ([], [], [])
        transcribe_lines(reader, record, data, numbers, key=KEY, terms=page.terms())
        for _ in range(reps):
            for kind, options in enumerate(({}, {"key": KEY}, {"key": KEY, "terms": page.terms()})):
                start = time.perf_counter()
                transcribe_lines(reader, record, data, numbers, **options)  # type: ignore[arg-type]
                times[kind].append(1000 * (time.perf_counter() - start))
        out.append(times)
    return out


_WORKER_READER: list[TrainedReader] = []


def _score_job(job: tuple[str, int, str | None, str, bool, tuple[Tier, ...], frozenset[str]]) -> list[Score]:
    mix, seed, model, chain, guided, extras, only = job
    if not _WORKER_READER:
        _WORKER_READER.append(TrainedReader(model, threads=1))
    return score_page(_WORKER_READER[0], make_page(mix, seed, CHAINS[chain], extras), guided=guided, only=only)


def tiers_label(tiers: Sequence[Tier]) -> str:
    def one(t: Tier) -> str:
        levels = getattr(t, "levels", 256)  # grey levels, where tiers have them
        codec = "lossless webp" if t.lossless else t.codec
        return f"{t.name} {t.scale:g} {codec}" + (f" {levels}lv" if levels != 256 else "")

    return ", ".join(one(t) for t in tiers)


def _row(name: str, s: Score, guided: bool = True) -> str:
    cer_a, cer_v = 100 * s.edits_argmax / max(1, s.chars), 100 * s.edits_verified / max(1, s.chars)
    timing = ""
    if s.times_plain:
        p = statistics.median(s.times_plain), percentile(s.times_plain, 0.95)
        v = statistics.median(s.times_verified), percentile(s.times_verified, 0.95)
        u = statistics.median(s.times_unguided), percentile(s.times_unguided, 0.95)
        timing = f"  read {p[0]:5.1f}/{p[1]:5.1f} ms, verified {v[0]:5.1f}/{v[1]:5.1f} ms (p50/p95)"
        timing += f" [no terms {u[0]:5.1f}/{u[1]:5.1f}]" if guided else ""
    before = ""
    if guided:
        cer_u, verified_u = 100 * s.edits_unguided / max(1, s.chars), 100 * s.verified_unguided / s.lines
        before = f" [no terms: CER {cer_u:7.4f} %, verified {verified_u:6.2f} %, wrong+verified {s.wrong_unguided}]"
    return (
        f"  {name:>6}  B/char {s.nbytes / max(1, s.chars):5.2f}  lines {s.lines:6d}"
        f"  CER {cer_a:7.4f} % -> {cer_v:7.4f} %  exact {100 * s.exact / s.lines:6.2f} %"
        f"  verified {100 * s.verified / s.lines:6.2f} %  wrong+verified {s.wrong_verified}{before}{timing}"
    )


def compare(
    name: str, make: Callable[[], Reader], pages: Sequence[BenchPage], only: frozenset[str] = frozenset()
) -> None:
    """Another reader's one reading of each line, checked against the codes (nothing to search)."""
    try:
        reader = make()
        totals: list[Score] = []
        for page in pages:
            start = time.perf_counter()
            scores = score_page(reader, page, verify=True, guided=False, only=only)
            per_page = 1000 * (time.perf_counter() - start) / len(scores) / 2
            for t, s in enumerate(scores):
                s.times_plain.append(per_page)
                s.times_verified.append(per_page)
                s.times_unguided.append(per_page)
                if len(totals) <= t:
                    totals.append(Score())
                totals[t].add(s)
    except Exception as exc:  # an optional reader: absent binaries and wheels are reported, not fatal
        print(f"  {name}: not installed or failed ({type(exc).__name__}: {exc})")
        return
    print(f"  {name} ({len(pages)} pages; time is the mean per page and tier):")
    for (tier, _, _), s in zip(read_images(pages[0], only), totals, strict=True):
        print(_row(tier.name, s, guided=False))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="reader.onnx (default: the shipped one)")
    parser.add_argument("--mix", choices=[*MIXES, "both"], default="both")
    parser.add_argument(
        "--chain",
        choices=sorted(CHAINS),
        default="config",
        help="default tiers, the previous defaults (by scale alone), or the old lossless",
    )
    parser.add_argument("--pages", type=int, default=12, help="held-out pages per mix")
    parser.add_argument(
        "--no-terms",
        dest="terms",
        action="store_false",
        help="verify without the search index's guidance only (by default each line is verified both ways)",
    )
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED + 9000)
    parser.add_argument("--workers", type=int, default=1, help="processes that score pages (timing stays serial)")
    parser.add_argument("--time-pages", type=int, default=8, help="pages per mix timed, --reps reads each")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pin", action="store_true", help="time on CPUs 0 and 1 only (2 cores)")
    parser.add_argument("--compare-pages", type=int, default=2, help="pages per mix for RapidOCR and Tesseract")
    parser.add_argument(
        "--levels",
        action="append",
        default=[],
        metavar="TIER=N",
        help="the chain with that tier's grey levels changed, e.g. frost=256 (repeatable): what a config could trade",
    )
    parser.add_argument(
        "--tier",
        action="append",
        default=[],
        metavar="NAME=SCALE/LEVELS",
        help="the chain with that tier's scale and grey levels changed, e.g. cold=0.35/8 (repeatable); "
        "the tiers below it fade from what it stores",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="read only this tier (repeatable; default: every tier and candidate); all are still made",
    )
    parser.add_argument(
        "--extra-tier",
        action="append",
        default=[],
        metavar="NAME=SCALE/LEVELS",
        help="also a candidate tier below the chain's last, e.g. ice=0.17/16 (repeatable; each one below the last)",
    )
    args = parser.parse_args()
    if args.levels:  # registered before the workers fork, which find chains by name
        changed = dict(item.split("=", 1) for item in args.levels)
        name = args.chain + "+" + ",".join(args.levels)
        CHAINS[name] = tuple(
            dataclasses.replace(tier, levels=int(changed[tier.name])) if tier.name in changed else tier
            for tier in CHAINS[args.chain]
        )
        args.chain = name
    try:
        if args.tier:
            name = args.chain + "+" + ",".join(args.tier)
            CHAINS[name] = changed_tiers(CHAINS[args.chain], args.tier)
            args.chain = name
        args.extras = tuple(extra_tier(spec, CHAINS[args.chain]) for spec in args.extra_tier)
    except ValueError as exc:
        parser.error(str(exc))
    names = [t.name for t in (*CHAINS[args.chain], *args.extras)]
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        parser.error(f"--only {', '.join(unknown)}: no such tier; the chain's tiers and candidates are {names}")
    args.only = frozenset(args.only)
    return args


def changed_tiers(chain: Sequence[Tier], specs: Sequence[str]) -> tuple[Tier, ...]:
    """`chain` with the tiers named in `specs` ("NAME=SCALE/LEVELS") at that scale and those grey levels."""
    changed: dict[str, Tier] = {}
    by_name = {tier.name: tier for tier in chain}
    for spec in specs:
        name, _, rest = spec.partition("=")
        scale, _, levels = rest.partition("/")
        if name not in by_name:
            raise ValueError(f"--tier {spec!r}: no tier {name!r}; the chain's tiers are {list(by_name)}")
        try:
            changed[name] = by_name[name].by_scale(scale=float(scale), levels=int(levels))
        except ValueError as exc:
            raise ValueError(f"--tier {spec!r}: give NAME=SCALE/LEVELS, e.g. cold=0.35/8 ({exc})") from None
    tiers = tuple(changed.get(tier.name, tier) for tier in chain)
    for upper, lower in itertools.pairwise(tiers):
        if lower.scale > upper.scale:
            raise ValueError(
                f"--tier: {lower.name} ({lower.scale:g}) would be larger than {upper.name} ({upper.scale:g})"
            )
    return tiers


def main() -> None:
    args = parse_args()
    reader = TrainedReader(args.model, threads=args.threads)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; model {reader.model_path.name}; "
        f"{args.pages} pages per mix, seed {args.seed}; chain {args.chain}: {tiers_label(CHAINS[args.chain])}; "
        + (f"candidates below {CHAINS[args.chain][-1].name}: {tiers_label(args.extras)}; " if args.extras else "")
        + f"search: {MAX_CANDIDATES} candidates a line, {PAGE_CANDIDATES} a page; check codes {CODE_BYTES} bytes"
    )
    mixes = list(MIXES) if args.mix == "both" else [args.mix]
    tiers = CHAINS[args.chain]
    checked = wrong = 0
    for mix in mixes:
        lines, wrongly_verified = measure_mix(reader, mix, tiers, args)
        checked += lines
        wrong += wrongly_verified
    bound = checked * (MAX_CANDIDATES + 1) / 2.0 ** (8 * CODE_BYTES)
    ways = "with and without the index's guidance, each reading counted" if args.terms else "without the index"
    print(
        f"line readings checked by the trained reader ({ways}): {checked:,}; wrong but marked verified: {wrong}; "
        f"hash bound: at most {MAX_CANDIDATES + 1} candidates a line / 2^{8 * CODE_BYTES} -> "
        f"expected false verifications <= {bound:.2e}"
    )


def measure_mix(reader: TrainedReader, mix: str, tiers: tuple[Tier, ...], args: argparse.Namespace) -> tuple[int, int]:
    """One mix: every page scored, some timed, the other readers compared; (lines checked, wrong but verified)."""
    checked = wrong = 0
    jobs = [(mix, args.seed + i, args.model, args.chain, args.terms, args.extras, args.only) for i in range(args.pages)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(_score_job, jobs, chunksize=1))
    else:
        pages = (make_page(mix, seed, tiers, args.extras) for mix, seed, *_ in jobs)
        results = [score_page(reader, page, guided=args.terms, only=args.only) for page in pages]
    columns = [tier for tier in (*tiers, *args.extras) if not args.only or tier.name in args.only]
    totals = [Score() for _ in columns]
    for page_scores in results:
        for total, s in zip(totals, page_scores, strict=True):
            total.add(s)
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0, 1})
    timed = [make_page(mix, args.seed + i, tiers, args.extras) for i in range(min(args.time_pages, args.pages))]
    for page in timed:
        timings = time_page(reader, page, args.reps, args.only)
        for total, (plain, unguided, guided) in zip(totals, timings, strict=True):
            total.times_plain += plain
            total.times_unguided += unguided
            total.times_verified += guided if args.terms else unguided
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print(f"{mix} mix, trained reader ({args.pages} pages; timed: {len(timed)} pages x {args.reps} reads):")
    for tier, s in zip(columns, totals, strict=True):
        print(_row(tier.name, s, guided=args.terms))
        checked += s.lines * (2 if args.terms else 1)
        wrong += s.wrong_verified + (s.wrong_unguided if args.terms else 0)
    compare_pages = timed[: args.compare_pages]
    if compare_pages:
        from bench.common import TesseractReader
        from optical_memory.readers.rapid import RapidOcrReader

        compare("rapidocr", RapidOcrReader, compare_pages, args.only)
        compare("tesseract", TesseractReader, compare_pages, args.only)
    return checked, wrong


if __name__ == "__main__":
    main()
