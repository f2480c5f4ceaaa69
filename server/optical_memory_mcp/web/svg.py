"""Inline SVG drawn on the server: a session's pages per tier as a small bar, and the fading plots.

Colours use presentation attributes only (no style attributes), so the page's Content Security
Policy, which allows no inline styles, leaves them alone. All text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence

from optical_memory_mcp.web.html import esc

__all__ = [
    "LEGEND_HEIGHT",
    "LEGEND_WIDTH",
    "TIER_COLOURS",
    "bar_chart",
    "days_chart",
    "grouped_chart",
    "tier_bar",
    "tier_legend",
]

# hot to cold: warm colours for sharp pages, cooling to grey as they fade
TIER_COLOURS = ("#d9480f", "#f59f00", "#2f9e44", "#1c7ed6", "#7048e8", "#868e96")


def colour(index: int) -> str:
    return TIER_COLOURS[min(index, len(TIER_COLOURS) - 1)]


def tier_bar(counts: Sequence[int], names: Sequence[str], width: int = 180, height: int = 14) -> str:
    """A stacked bar: each tier's share of a session's pages, hot at the left."""
    total = sum(counts) or 1
    x = 0.0
    parts = []
    for index, (count, name) in enumerate(zip(counts, names, strict=True)):
        if not count:
            continue
        w = width * count / total
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colour(index)}">'
            f"<title>{esc(name)}: {count:,} pages</title></rect>"
        )
        x += w
    label = ", ".join(f"{name} {count:,}" for name, count in zip(names, counts, strict=True))
    return (
        f'<svg class="tierbar" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="pages per tier: {esc(label)}">'
        f'<rect width="{width}" height="{height}" fill="#eee"/>{"".join(parts)}</svg>'
    )


LEGEND_WIDTH, LEGEND_HEIGHT = 460, 38


def tier_legend(counts: Sequence[int], names: Sequence[str]) -> str:
    """The tier bar, wide, with each tier's name and page count under it."""
    bar = tier_bar(counts, names, width=LEGEND_WIDTH, height=16)
    x = 0
    labels = []
    for index, (count, name) in enumerate(zip(counts, names, strict=True)):
        text = f"{name} {count:,}"
        labels.append(
            f'<rect x="{x}" y="24" width="10" height="10" fill="{colour(index)}"/>'
            f'<text x="{x + 14}" y="33" font-size="12" font-family="sans-serif" fill="#222">{esc(text)}</text>'
        )
        x += 20 + 8 * len(text)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEGEND_WIDTH}" height="{LEGEND_HEIGHT}" '
        f'viewBox="0 0 {LEGEND_WIDTH} {LEGEND_HEIGHT}">{bar}{"".join(labels)}</svg>'
    )


def _frame(width: int, height: int, title: str, body: str) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f'<text x="0" y="14" font-size="13" font-weight="bold" fill="#222">{esc(title)}</text>{body}</svg>'
    )


def _human(value: float, unit: str = "") -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}{unit}"
    return f"{value:,.0f}{unit}"


def bar_chart(title: str, values: Sequence[int], names: Sequence[str], unit: str = "") -> str:
    """One bar per tier, coloured by tier, labelled with its value."""
    width, height, top, bottom = 360, 210, 44, 36  # top: room for the tallest bar's label under the title
    peak = max(values, default=0) or 1
    slot = (width - 20) / max(len(values), 1)
    parts = []
    for index, (value, name) in enumerate(zip(values, names, strict=True)):
        h = (height - top - bottom) * value / peak
        x = 10 + index * slot + slot * 0.15
        y = height - bottom - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{colour(index)}">'
            f"<title>{esc(name)}: {value:,}{esc(unit)}</title></rect>"
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" font-size="11" text-anchor="middle" fill="#222">'
            f"{esc(_human(value, unit))}</text>"
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16:.1f}" font-size="12" text-anchor="middle" '
            f'fill="#222">{esc(name)}</text>'
        )
    return _frame(width, height, title, "".join(parts))


def grouped_chart(title: str, series: dict[str, Sequence[int]], names: Sequence[str]) -> str:
    """Several values per tier side by side (text tokens against image tokens), with a legend."""
    width, height, top, bottom = 520, 230, 48, 36
    shades = ("#495057", "#e8590c", "#1971c2", "#2b8a3e")
    peak = max((v for values in series.values() for v in values), default=0) or 1
    slot = (width - 20) / max(len(names), 1)
    bar = slot * 0.8 / max(len(series), 1)
    parts = []
    for s, (label, values) in enumerate(series.items()):
        parts.append(
            f'<rect x="{10 + s * 170}" y="24" width="10" height="10" fill="{shades[s % len(shades)]}"/>'
            f'<text x="{24 + s * 170}" y="33" font-size="11" fill="#222">{esc(label)}</text>'
        )
        for index, value in enumerate(values):
            h = (height - top - bottom) * value / peak
            x = 10 + index * slot + slot * 0.1 + s * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{shades[s % len(shades)]}"><title>{esc(names[index])}, {esc(label)}: {value:,}</title></rect>'
            )
    for index, name in enumerate(names):
        parts.append(
            f'<text x="{10 + index * slot + slot / 2:.1f}" y="{height - bottom + 16}" font-size="12" '
            f'text-anchor="middle" fill="#222">{esc(name)}</text>'
        )
    return _frame(width, height, title, "".join(parts))


def days_chart(title: str, days: dict[str, list[int]], names: Sequence[str], most_bars: int = 60) -> str:
    """Pages by the day they were written, stacked by the tier they are at now: fading, over time."""
    width, height, top, bottom = 720, 240, 48, 40
    ordered = sorted(days.items())
    step = max(1, -(-len(ordered) // most_bars))  # several days a bar when there are many
    bars: list[tuple[str, list[int]]] = []
    for start in range(0, len(ordered), step):
        chunk = ordered[start : start + step]
        summed = [sum(column) for column in zip(*(counts for _, counts in chunk), strict=True)]
        bars.append((chunk[0][0], summed))
    peak = max((sum(counts) for _, counts in bars), default=0) or 1
    slot = min((width - 20) / max(len(bars), 1), 48.0)  # a few days: bars, not blocks
    parts = [
        f'<rect x="{10 + i * 90}" y="24" width="10" height="10" fill="{colour(i)}"/>'
        f'<text x="{24 + i * 90}" y="33" font-size="11" fill="#222">{esc(name)}</text>'
        for i, name in enumerate(names)
    ]
    for b, (day, counts) in enumerate(bars):
        y = float(height - bottom)
        for index, count in enumerate(counts):
            h = (height - top - bottom) * count / peak
            y -= h
            if count:
                parts.append(
                    f'<rect x="{10 + b * slot:.1f}" y="{y:.1f}" width="{max(slot * 0.85, 1):.1f}" height="{h:.1f}" '
                    f'fill="{colour(index)}"><title>{esc(day)}: {count:,} {esc(names[index])}</title></rect>'
                )
    for b in sorted({0, len(bars) - 1}) if bars else []:
        parts.append(
            f'<text x="{10 + b * slot + slot * 0.4:.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="{"start" if b == 0 else "end"}" fill="#222">{esc(bars[b][0])}</text>'
        )
    return _frame(width, height, title, "".join(parts))
