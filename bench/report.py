"""The bench's output: results.md (markdown tables naming the machine) and the PNG plots beside it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import TOKENIZER

if TYPE_CHECKING:
    from bench.results import Fidelity, Results

__all__ = ["write_report"]

PLOTS = ("fidelity_vs_compression.png", "latency.png", "storage.png")
# DeepSeek-OCR's published results on the Fox benchmark (DeepSeek-OCR paper, 2025): OCR *precision* at a
# text/vision token ratio, a different metric from 1 - CER: plotted for orientation, labelled as published.
FOX = ((10.5, 0.965, "96.5 % at 10.5x"), (20.0, 0.59, "59 % at ~20x (64 vision tokens)"))


def _codec(results: Results, index: int) -> str:
    tier = results.tiers[index]
    return tier.codec + ("" if tier.codec == "png" or tier.lossless else f" q{tier.quality}")


def _ratio(results: Results, tier: int, reader: str) -> str:
    """How many times faster the trained reader read the same pages' rows than `reader`."""
    scores = {s.reader: s for s in results.fidelity if s.tier == results.tiers[tier] and not s.status}
    if reader not in scores or "trained" not in scores:
        return ""
    theirs = scores[reader].read_ms
    ours = sum(scores["trained"].read_ms[i] for i in theirs) / len(theirs)
    slow = sum(theirs.values()) / len(theirs)
    return f"| {results.tiers[tier].name} | {len(theirs)} | {ours:.0f} | {slow:,.0f} | {slow / ours:,.0f}x |"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:,.1f}"


def tables(results: Results) -> str:
    lines = [
        *_header(results),
        *_fidelity_section(results),
        *_speed_section(results),
        *_storage_section(results),
        *_scale_section(results),
        "",
        "## Plots",
        "",
        *(f"![{name[:-4]}]({name})" for name in PLOTS),
        "",
    ]
    return "\n".join(lines)


def _header(results: Results) -> list[str]:
    m = results.machine
    return [
        "# optical-memory benchmark results",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}; Python {m['python']}, onnxruntime {m['onnxruntime']}.",
        f"Command: `{results.command}`. Corpus: {results.corpus}; {len(results.pages)} sealed pages measured.",
        f"Text tokens: {TOKENIZER} (the `bpe-openai` package, offline BPE). Image tokens: DeepSeek-OCR vision "
        "tokens = w*h/4096 (one per 64x64 px), Claude image tokens = w*h/750.",
    ]


def _fidelity_section(results: Results) -> list[str]:
    lines = [
        "",
        "## Fidelity by reader and tier",
        "",
        "CER = edit distance / characters over each line's joined text; exact = lines read exactly; "
        "compression = text tokens per image token; read = ms to read all lines of one page.",
        "",
        "| reader | tier | scale | codec | px/char | pages | lines | CER % | char. accuracy % | exact lines % "
        "| text/DeepSeek tok | text/Claude tok | read ms/page |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results.fidelity:
        index = results.tiers.index(s.tier)
        head = f"| {s.reader} | {s.tier.name} | {s.tier.scale} | {_codec(results, index)} |"
        if s.status:
            lines.append(f"{head} | | | {s.status.split(' (')[0]} | | | | | |")
            continue
        read = sum(s.read_ms.values()) / len(s.read_ms)
        lines.append(
            f"{head} {s.px_per_char:.1f} | {s.pages} | {s.lines} | {100 * s.cer:.3f} | {100 * (1 - s.cer):.2f} "
            f"| {100 * s.exact_rate:.1f} | {s.tokens / s.deepseek:.1f} | {s.tokens / s.claude:.2f} | {read:,.0f} |"
        )
    reasons = {f"{s.reader}: {s.status}" for s in results.fidelity if s.status.startswith("unavailable (")}
    return [*lines, *(f"\n{reason}" for reason in sorted(reasons))]


def _speed_section(results: Results) -> list[str]:
    r = results.remember
    lines = [
        "",
        "## Speed",
        "",
        f"remember: {r['pages']} pages in {r['seconds']:.2f} s = **{r['pages_per_s']:.1f} pages/s** "
        "(one LMDB write transaction per call, synced on commit, as the server runs).",
        "",
        "| operation | p50 ms | p95 ms | n |",
        "|---|---|---|---|",
        *(f"| {name} | {_ms(p50)} | {_ms(p95)} | {n} |" for name, (p50, p95, n) in results.speed.items()),
    ]
    ratios = [row for t in range(len(results.tiers)) if (row := _ratio(results, t, "rapidocr"))]
    lines += ["", "Reader speed on the same pages' rows (ms per page):", ""]
    if ratios:
        lines += ["| tier | pages | trained | rapidocr | trained is faster by |", "|---|---|---|---|---|", *ratios]
    else:
        lines.append("RapidOCR was not run: no ratio.")
    return lines


def _storage_section(results: Results) -> list[str]:
    st = results.storage
    lines = [
        "",
        "## Storage",
        "",
        "| tier | scale | codec | KiB/page | bytes/char | bytes/text token |",
        "|---|---|---|---|---|---|",
    ]
    for index, tier in enumerate(results.tiers):
        lines.append(
            f"| {tier.name} | {tier.scale} | {_codec(results, index)} | {st[f'{tier.name}.kib_per_page']:.1f} "
            f"| {st[f'{tier.name}.bytes_per_char']:.2f} | {st[f'{tier.name}.bytes_per_token']:.2f} |"
        )
    return [
        *lines,
        "",
        f"Archive for 1M text tokens of history (**written and measured**: {st['pages_1m']:,} pages of "
        f"{st['tokens_per_page']:,.0f} tokens, copies of the measured pages, in one session, each at the tier its "
        f"rank gives; records, indexes and search postings included): **{st['bytes_1m'] / 2**20:,.1f} MiB** "
        f"on disk, of which page images {st['image_bytes_1m'] / 2**20:,.1f} MiB.",
    ]


def _scale_section(results: Results) -> list[str]:
    sc = results.scale
    return [
        "",
        "## Scale",
        "",
        f"{sc['pages']:,.0f} pages in {sc['sessions']:.0f} sessions, written directly through `Archive` "
        f"(copies of the {sc['templates']:.0f} measured pages, each at the tier its rank gives, search postings "
        f"included) in {sc['generate_s']:.1f} s; probed in a fresh process. Search terms repeat in every copy "
        "of a page, so posting lists are longer than in real history: search latency here is pessimistic.",
        "",
        "| pages | open ms | list_pages p50 / p95 ms | search p50 / p95 ms | of which ranking p50 / p95 ms "
        "| peak RSS MiB (after imports) | of it the process's own (RssAnon) MiB | on disk MiB |",
        "|---|---|---|---|---|---|---|---|",
        f"| {sc['pages']:,.0f} | {sc['open_ms']:.1f} | {sc['list_p50_ms']:.2f} / {sc['list_p95_ms']:.2f} "
        f"| {sc['search_p50_ms']:.1f} / {sc['search_p95_ms']:.1f} | {sc['rank_p50_ms']:.1f} / {sc['rank_p95_ms']:.1f} "
        f"| {sc['rss_mib']:.0f} ({sc['rss_before_mib']:.0f}) | {sc.get('rss_anon_mib', float('nan')):.0f} "
        f"| {sc['bytes_on_disk'] / 2**20:,.1f} |",
    ]


def plot_fidelity(results: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    measured: list[Fidelity] = [s for s in results.fidelity if not s.status]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharex=True)
    for ax, metric, label in (
        (axes[0], lambda s: 1 - s.cer, "character accuracy (1 - CER)"),
        (axes[1], lambda s: s.exact_rate, "exact-line rate"),
    ):
        for reader in dict.fromkeys(s.reader for s in measured):
            points = [s for s in measured if s.reader == reader]
            xs, ys = [s.tokens / s.deepseek for s in points], [metric(s) for s in points]
            ax.plot(xs, ys, marker="o", label=f"{reader} (this run)")
            for s, x, y in zip(points, xs, ys, strict=True):
                ax.annotate(s.tier.name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.scatter(
            [x for x, _, _ in FOX], [y for _, y, _ in FOX], marker="*", s=160, color="black",
            label="DeepSeek-OCR on Fox, published figures (precision: a different metric)",
        )  # fmt: skip
        for x, y, text in FOX:
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(-10, -14), fontsize=8)
        ax.set_xlabel("compression: text tokens per DeepSeek vision token")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Fidelity vs compression ({TOKENIZER} text tokens; 1 vision token per 4,096 px)")
    fig.text(
        0.5, 0.01, "Stars: DeepSeek-OCR on the Fox benchmark as published (Wei et al., 2025), OCR precision "
        "at that compression - not measured here, and not the same metric as 1 - CER or exact lines.",
        ha="center", fontsize=8, style="italic",
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency(results: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    sc = results.scale
    bars = [("remember (per page)", 1000 / results.remember["pages_per_s"], 1000 / results.remember["pages_per_s"])]
    bars += [(name, p50, p95) for name, (p50, p95, _) in results.speed.items()]
    bars += [
        (f"scale {sc['pages']:,.0f}: open", sc["open_ms"], sc["open_ms"]),
        (f"scale {sc['pages']:,.0f}: list_pages", sc["list_p50_ms"], sc["list_p95_ms"]),
        (f"scale {sc['pages']:,.0f}: search", sc["search_p50_ms"], sc["search_p95_ms"]),
        (f"scale {sc['pages']:,.0f}: search ranking only", sc["rank_p50_ms"], sc["rank_p95_ms"]),
    ]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(bars) + 1.5))
    names = [b[0] for b in bars]
    ax.barh(names, [b[2] for b in bars], color="#c6dbef", label="p95")
    ax.barh(names, [b[1] for b in bars], color="#3182bd", label="p50")
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    ax.invert_yaxis()
    ax.legend()
    ax.set_title("Latency (trained reader)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_storage(results: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    names = [tier.name for tier in results.tiers]
    values = [results.storage[f"{name}.bytes_per_char"] for name in names]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(names, values, color="#31a354")
    for x, value in enumerate(values):
        ax.annotate(f"{value:.2f}", (x, value), ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("stored image bytes per character")
    ax.set_title("Storage per tier")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: Results, out: Path) -> str:
    """Write out/results.md and the plots; returns the markdown."""
    import matplotlib

    matplotlib.use("Agg")
    markdown = tables(results)
    (out / "results.md").write_text(markdown, encoding="utf-8")
    plot_fidelity(results, out / PLOTS[0])
    plot_latency(results, out / PLOTS[1])
    plot_storage(results, out / PLOTS[2])
    return markdown
