"""The pages that read: sessions, a session's pages, a page with its lines, an image, search, fading.

Each handler validates what the address gives it (`checks`), calls the facade, and renders HTML with
`html` and `svg`. They are plain functions (Starlette runs them on worker threads, as the facade's
LMDB transactions must not span awaits).
"""

from __future__ import annotations

from dataclasses import dataclass

from optical_memory.memory import MAX_SEARCH_HITS, Memory
from optical_memory.results import Line, PageInfo, SessionInfo
from optical_memory_mcp.web import svg
from optical_memory_mcp.web.checks import page_id_arg, query_arg, session_arg
from optical_memory_mcp.web.html import attr_url, esc, highlight, layout, marked_line, short_time, tier_badge
from optical_memory_mcp.web.stats import ArchiveFigures, TierCounts, newer_page

__all__ = ["PAGES_PER_VIEW", "SESSIONS_PER_VIEW", "Views"]

PAGES_PER_VIEW = 24  # thumbnails per screen of a session: a 4 x 6 grid
SESSIONS_PER_VIEW = 100
SEARCH_HITS = min(20, MAX_SEARCH_HITS)


@dataclass
class Views:
    memory: Memory
    tier_counts: TierCounts
    figures: ArchiveFigures

    @property
    def tier_names(self) -> list[str]:
        return [tier.name for tier in self.memory.tiers]

    # sessions ---------------------------------------------------------------------------------
    def sessions(self, start: int = 0) -> str:
        every = sorted(self.memory.list_sessions().sessions, key=lambda s: s.updated, reverse=True)
        shown = every[start : start + SESSIONS_PER_VIEW]
        rows = "".join(self._session_row(s) for s in shown)
        later = start + SESSIONS_PER_VIEW
        more = f'<p class="pager"><a rel="next" href="{attr_url("/", start=later)}">more sessions</a></p>'
        more = more if later < len(every) else ""
        total = sum(s.pages for s in every)
        legend = " ".join(tier_badge(name, index) for index, name in enumerate(self.tier_names))
        body = f"""<h1>Sessions</h1>
<p class="summary">{len(every):,} sessions, {total:,} pages. Newest activity first.</p>
<table class="sessions">
<thead><tr><th>Session</th><th class="num">Pages</th><th>First</th><th>Last</th><th>Pages per tier</th></tr></thead>
<tbody>{rows or '<tr><td colspan="5">No sessions yet: remember something first.</td></tr>'}</tbody>
</table>
<p class="legend">Tiers, sharpest first: {legend}</p>{more}"""
        return layout("Sessions", body)

    def _session_row(self, s: SessionInfo) -> str:
        bar = attr_url("/session/tiers.svg", name=s.name, pages=s.pages, updated=s.updated)
        return (
            f'<tr><td><a class="session" href="{attr_url("/session", name=s.name)}">{esc(s.name)}</a></td>'
            f'<td class="num">{s.pages:,}</td><td>{esc(short_time(s.created))}</td>'
            f"<td>{esc(short_time(s.updated))}</td>"
            f'<td><img class="tierbar" src="{bar}" width="180" height="14" alt="pages per tier" loading="lazy">'
            "</td></tr>"
        )

    def session_info(self, name: str) -> SessionInfo:
        for s in self.memory.list_sessions().sessions:
            if s.name == name:
                return s
        # the facade's own message names the sessions that exist
        self.memory.list_pages(session=name, limit=1)
        raise AssertionError("list_pages found a session list_sessions did not")  # pragma: no cover

    def tier_bar_svg(self, name: str, legend: bool = False) -> str:
        session = self.session_info(session_arg(name))
        counts = self.tier_counts.of(session)
        return svg.tier_legend(counts, self.tier_names) if legend else svg.tier_bar(counts, self.tier_names)

    # a session's pages ------------------------------------------------------------------------
    def session(self, name: str | None, cursor: str | None) -> str:
        name = session_arg(name)
        if cursor is not None:
            cursor = page_id_arg(cursor)
        info = self.session_info(name)
        listing = self.memory.list_pages(session=name, cursor=cursor, limit=PAGES_PER_VIEW)
        bar = attr_url("/session/tiers.svg", name=name, pages=info.pages, updated=info.updated, legend=1)
        cards = "".join(self._card(page) for page in listing.pages)
        pager = [f'<a href="{attr_url("/session", name=name)}">newest</a>'] if cursor else []
        if listing.next_cursor:
            pager.append(
                f'<a rel="next" href="{attr_url("/session", name=name, cursor=listing.next_cursor)}">older</a>'
            )
        body = f"""<h1>Session <span class="name">{esc(name)}</span></h1>
<p class="summary">{info.pages:,} pages, {esc(short_time(info.created))} to {esc(short_time(info.updated))}.
<a class="danger" href="{attr_url("/forget", session=name)}">Forget this session…</a></p>
<p class="tiers"><img src="{bar}" width="{svg.LEGEND_WIDTH}" height="{svg.LEGEND_HEIGHT}" alt="pages per tier"></p>
<div class="grid">{cards or "<p>No pages.</p>"}</div>
<p class="pager">{" ".join(pager)}</p>"""
        return layout(f"Session {name}", body, session=name)

    @staticmethod
    def _card(page: PageInfo) -> str:
        href = attr_url(f"/page/{page.id}")
        return f"""<a class="card" href="{href}">
<img src="{attr_url(f"/page/{page.id}/image")}" alt="page {esc(page.id)}" loading="lazy"
 width="{page.image_width}" height="{page.image_height}">
<span class="caption"><b>{esc(page.id)}</b> {tier_badge(page.tier, page.tier_index)}{"" if page.sealed else " open"}
<br>{page.lines:,} lines · {page.characters:,} chars · {page.text_tokens:,} text tok
<br>image {page.image_tokens:,} Claude · {page.vision_tokens:,} DeepSeek
<br><time>{esc(short_time(page.created))}</time></span></a>"""

    # a page -----------------------------------------------------------------------------------
    def page(self, page_id: str) -> str:
        page_id = page_id_arg(page_id)
        info = self.memory.page_info(page_id)
        older = self.memory.list_pages(session=info.session, cursor=page_id, limit=1).pages
        newer = newer_page(self.memory, info.session, page_id)
        lines_html = self._lines(page_id, info)
        nav = []
        if older:
            nav.append(f'<a rel="prev" href="{attr_url(f"/page/{older[0].id}")}">← older {esc(older[0].id)}</a>')
        if newer:
            nav.append(f'<a rel="next" href="{attr_url(f"/page/{newer}")}">newer {esc(newer)} →</a>')
        filename = f"{info.id}.{info.image_format}"
        body = f"""<h1>Page {esc(info.id)} {tier_badge(info.tier, info.tier_index)}</h1>
<p class="summary">session <a href="{attr_url("/session", name=info.session)}">{esc(info.session)}</a> ·
{esc(short_time(info.created))}{"" if info.sealed else " · open"} · {info.lines:,} lines ·
{info.characters:,} characters · {info.text_tokens:,} text tokens ·
{info.image_tokens:,} Claude image tokens · {info.vision_tokens:,} DeepSeek vision tokens ·
{info.image_width}×{info.image_height} {esc(info.image_format)}, {info.image_bytes:,} bytes</p>
<p class="actions"><a download="{esc(filename)}" href="{attr_url(f"/page/{info.id}/image", download=1)}">Download
{esc(filename)}</a> <a class="danger" href="{attr_url("/forget", page=info.id)}">Forget this page…</a></p>
<nav class="pages">{" ".join(nav)}</nav>
<div class="page">
<div class="image"><img id="page-image" src="{attr_url(f"/page/{info.id}/image")}" alt="page {esc(info.id)}"
 width="{info.image_width}" height="{info.image_height}"></div>
<div class="lines">{lines_html}</div>
</div>"""
        return layout(f"Page {info.id}", body, session=info.session)

    def _lines(self, page_id: str, info: PageInfo) -> str:
        if info.lines == 0:
            return "<p>No lines on this page yet.</p>"
        read = self.memory.read_lines(page_id)
        rows = []
        entry: tuple[str | None, str | None, str | None] | None = None
        for line in read.lines:
            if (line.role, line.time, line.title) != entry:
                entry = (line.role, line.time, line.title)
                rows.append(_entry_row(line))
            rows.append(_line_row(line))
        return (
            f'<p class="reader">Read by <b>{esc(read.reader)}</b> at tier {esc(read.tier)}.</p>'
            f'<table class="read"><tbody>{"".join(rows)}</tbody></table>'
        )

    # search -----------------------------------------------------------------------------------
    def search(self, query: str | None, session: str | None) -> str:
        query = query_arg(query)
        if session is not None:
            session = session_arg(session)
        if not query:
            return layout("Search", "<h1>Search</h1><p>Type words, identifiers, paths or error codes above.</p>")
        result = self.memory.search(query, session=session, limit=SEARCH_HITS)
        hits = []
        for hit in result.hits:
            text = "".join(
                f'<div class="{"match" if line.number in hit.matches else "context"}">'
                f"{highlight(line.text, result.terms)}</div>"
                for line in hit.lines
            )
            at = hit.matches[0] if hit.matches else hit.start  # the first line that matched, not the context
            target = attr_url(f"/page/{hit.page_id}") + f"#L{at}"
            hits.append(
                f'<li class="hit"><a href="{target}">{esc(hit.page_id)} {_line_span(hit.start, hit.end)}</a> '
                f"{tier_badge(hit.tier, self.tier_names.index(hit.tier) if hit.tier in self.tier_names else 0)} "
                f'<span class="where">session {esc(hit.session)} · score {hit.score:.2f}</span>'
                f'<div class="text">{text}</div></li>'
            )
        where = f" in session {esc(session)}" if session else ""
        terms = ", ".join(f"<code>{esc(t)}</code>" for t in result.terms)
        body = f"""<h1>Search</h1>
<p class="summary">{len(result.hits)} hits for {esc(query)}{where} (terms: {terms}), best first,
each line as the reader reads it now.</p>
<ol class="hits">{"".join(hits) or "<li>No line matches.</li>"}</ol>"""
        return layout(f"Search {query}", body, query=query, session=session)

    # fading -----------------------------------------------------------------------------------
    def fading(self) -> str:
        totals = self.figures.totals()
        if totals is None:
            pages = sum(s.pages for s in self.memory.list_sessions().sessions)
            body = f"""<h1>Fading</h1>
<p class="summary">Counting the archive's {pages:,} pages by tier: this page reloads itself in a few
seconds.</p>"""
            return layout("Fading", body, refresh_s=3)
        names = self.tier_names
        charts = [
            svg.bar_chart("Pages per tier", totals.pages, names),
            svg.bar_chart("Stored image bytes per tier", totals.image_bytes, names, "B"),
            svg.grouped_chart(
                "Text tokens against image tokens, per tier",
                {
                    "text tokens": totals.text_tokens,
                    "Claude image tokens": totals.image_tokens,
                    "DeepSeek vision tokens": totals.vision_tokens,
                },
                names,
            ),
            svg.days_chart("Pages by the day they were written, at the tier they are at now", totals.days, names),
        ]
        pages = sum(totals.pages)
        body = f"""<h1>Fading</h1>
<p class="summary">{pages:,} pages, {sum(totals.image_bytes):,} bytes of images. Sharp pages at the hot tier cost
the most to look at; as a session grows and days pass, older pages fade to smaller, cheaper images.
(Counted over every page in {totals.computed_s:,.1f} s, in the background; counted again when sessions
change, at most once a minute.)</p>
<div class="charts">{"".join(f"<figure>{chart}</figure>" for chart in charts)}</div>"""
        return layout("Fading", body)


def _line_span(start: int, end: int) -> str:
    return f"line {start}" if end == start else f"lines {start}–{end}"


def _entry_row(line: Line) -> str:
    parts = [p for p in (line.role, short_time(line.time) if line.time else None, line.title) if p]
    return f'<tr class="entry"><td></td><td colspan="2">{esc(" · ".join(parts)) or "entry"}</td></tr>'


def _line_row(line: Line) -> str:
    state, mark = {True: ("verified", "✓"), False: ("unverified", "?"), None: ("unknown", "")}[line.verified]
    title = {
        "verified": "matches the check code kept when it was remembered",
        "unverified": "not verified: the reader's best guess",
        "unknown": "no check code for this line",
    }[state]
    alternative = (
        f'<div class="alternative">runner-up: {esc(line.alternative)}</div>' if line.alternative is not None else ""
    )
    return (
        f'<tr id="L{line.number}" class="line {state}"><td class="no"><a href="#L{line.number}">{line.number}</a></td>'
        f'<td class="state" title="{esc(title)}">{mark}</td>'
        f'<td class="text">{marked_line(line.text, line.uncertain)}{alternative}</td></tr>'
    )
