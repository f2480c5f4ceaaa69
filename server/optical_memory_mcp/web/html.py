"""HTML pieces: the page shell and small components, every value escaped on its way in.

No template engine: the pages are few and small, and f-strings with `esc` around every value keep
what is escaped visible at each use. A function here returns markup (already safe); anything else
that reaches a page passes through `esc` or `attr_url`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

__all__ = [
    "attr_url",
    "esc",
    "highlight",
    "layout",
    "login_page",
    "marked_line",
    "short_time",
    "tier_badge",
]


SURROGATE = re.compile("[\ud800-\udfff]")


def esc(value: object) -> str:
    """Text for HTML content or a quoted attribute; a lone surrogate (UTF-8 cannot carry one) shows as U+FFFD."""
    return SURROGATE.sub("\ufffd", html.escape(str(value), quote=True))


def attr_url(path: str, **params: object) -> str:
    """A same-site address with a query, escaped for an attribute (None values are left out)."""
    query = urlencode({k: str(v) for k, v in params.items() if v is not None})
    return esc(path + (f"?{query}" if query else ""))


def short_time(stamp: str | None) -> str:
    """'2026-11-26T10:00:05Z' -> '2026-11-26 10:00' (UTC, as stored)."""
    return "" if not stamp else stamp[:16].replace("T", " ")


def tier_badge(name: str, index: int) -> str:
    return f'<span class="tier t{min(index, 5)}" title="tier {index}">{esc(name)}</span>'


def layout(title: str, body: str, query: str = "", session: str | None = None, refresh_s: int | None = None) -> str:
    """A whole page: the header with the search box (on every page), then `body` (markup)."""
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">\n' if refresh_s else ""
    scope = (
        f'<label class="scope"><input type="checkbox" name="session" value="{esc(session)}" checked> '
        f"only this session</label>"
        if session is not None
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · optical-memory</title>
{refresh}<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<header class="top">
<a class="brand" href="/">optical-memory</a>
<nav><a href="/">Sessions</a><a href="/fading">Fading</a></nav>
<form class="search" action="/search" method="get" role="search">
<input type="search" name="q" value="{esc(query)}" placeholder="Search memory" aria-label="Search memory"
 maxlength="1000">
{scope}<button type="submit">Search</button>
</form>
</header>
<main>
{body}
</main>
</body>
</html>
"""


def login_page(next_url: str, message: str = "") -> str:
    """The form that takes the token once (it is then kept in an HttpOnly cookie)."""
    note = f'<p class="error">{esc(message)}</p>' if message else ""
    body = f"""<h1>Log in</h1>
{note}<p>This archive's pages need its token: the one in <code>OPTICAL_MEMORY_TOKEN</code>, or in the
<code>http-token</code> file of the archive folder. <code>optical-memory web --open</code> logs in for you.</p>
<form class="login" action="/login" method="post">
<input type="hidden" name="next" value="{esc(next_url)}">
<label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>"""
    return layout("Log in", body)


def _ranges(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Merged [start, end) spans of `text` where any term occurs, ignoring case."""
    # lower-case one character at a time, keeping positions (str.lower can change the length)
    folded = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    spans: list[tuple[int, int]] = []
    for term in {t.lower() for t in terms if t}:
        start = folded.find(term)
        while start != -1:
            spans.append((start, start + len(term)))
            start = folded.find(term, start + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, terms: Iterable[str]) -> str:
    """`text` escaped, with every occurrence of a search term in <mark>."""
    out: list[str] = []
    done = 0
    for start, end in _ranges(text, terms):
        out += [esc(text[done:start]), f"<mark>{esc(text[start:end])}</mark>"]
        done = end
    out.append(esc(text[done:]))
    return "".join(out)


def marked_line(text: str, uncertain: Sequence[int]) -> str:
    """A line read back, escaped, with the columns the reader doubts marked."""
    doubtful = set(uncertain)
    if not doubtful:
        return esc(text)
    return "".join(
        f'<span class="unsure" title="the reader doubts this character">{esc(ch)}</span>'
        if column in doubtful
        else esc(ch)
        for column, ch in enumerate(text)
    )
