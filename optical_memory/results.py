"""Typed results of the facade's calls. Field names are a public contract (the MCP tools return them)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "EntryRead",
    "ForgetResult",
    "Line",
    "LinesRead",
    "PageImage",
    "PageInfo",
    "PageList",
    "RememberResult",
    "SearchHit",
    "SearchResult",
    "SessionInfo",
    "SessionList",
    "Span",
]


class Span(BaseModel):
    """Where part of a remembered text lies: lines `start`..`end` of page `page_id`."""

    page_id: str
    start: int = Field(description="first line number of this text on the page")
    end: int = Field(description="last line number of this text on the page")
    continues: bool = Field(
        default=False,
        description="the last line continues as the first line of the next span: join them without a newline",
    )


class RememberResult(BaseModel):
    session: str
    spans: list[Span]
    characters: int
    text_tokens: int = Field(description="estimated text tokens of the remembered text (UTF-8 bytes / 4)")
    pages_sealed: list[str] = Field(default_factory=list, description="pages this call filled and sealed")


class PageInfo(BaseModel):
    id: str
    session: str
    created: str
    updated: str
    tier: str
    tier_index: int
    sealed: bool
    lines: int
    characters: int
    text_tokens: int
    image_width: int
    image_height: int
    image_bytes: int
    image_format: str
    image_tokens: int = Field(description="Claude image tokens: width * height / 750")
    vision_tokens: int = Field(description="DeepSeek-OCR vision tokens: one per 4,096 px")
    px_per_char: float
    title: str | None = None
    recalled_from: str | None = Field(default=None, description="the faded page this page re-renders lines of")


class PageList(BaseModel):
    pages: list[PageInfo]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` to list the next, older pages")


class PageImage(BaseModel):
    page_id: str
    mime_type: str
    data: bytes
    caption: str
    info: PageInfo


class Line(BaseModel):
    number: int
    text: str
    verified: bool | None = Field(
        default=None,
        description=(
            "true: the text matches the check code kept when the line was remembered (exact); false: no reading "
            "matched it, the text is the reader's best guess and may be wrong at the `uncertain` columns; "
            "null: the page was remembered before check codes existed, or the reader cannot verify"
        ),
    )
    uncertain: list[int] = Field(
        default_factory=list,
        description="0-based indices into `text` of the characters the reader doubts: when verified is false, "
        "where the reading may be wrong; when verified is null, the characters the reader is unsure of (empty "
        "when it is sure of all); an index >= len(text) means a character may be missing at the end",
    )
    alternative: str | None = Field(default=None, description="the reader's runner-up reading (when verified is false)")
    role: str | None = Field(default=None, description="who said the entry this line belongs to (user, assistant, ...)")
    time: str | None = Field(default=None, description="when the entry this line belongs to was said (UTC, ISO 8601)")
    title: str | None = Field(default=None, description="the title of the entry this line belongs to")


class LinesRead(BaseModel):
    page_id: str
    tier: str
    lines: list[Line]
    total_lines: int
    continued: bool = Field(default=False, description="line 1 continues the last line of the previous page")
    continues: bool = Field(default=False, description="the page's last line continues on the next page")
    reader: str
    recalled_into: list[Span] = Field(
        default_factory=list, description="where the lines were re-remembered, sharp (recall.reconsolidate on)"
    )
    session: str | None = Field(default=None, description="the session the page belongs to")
    previous_page: str | None = Field(
        default=None, description="the session's page before this one (where a `continued` line 1 begins)"
    )
    next_page: str | None = Field(
        default=None, description="the session's page after this one (where a `continues` last line goes on)"
    )


class EntryRead(BaseModel):
    """One remembered entry (one remember call) read back whole, across every page it spans."""

    entry: str = Field(description="the entry's id: '<page id>:<line>' where it begins")
    session: str
    role: str | None = None
    time: str = Field(description="when it was said (UTC, ISO 8601)")
    title: str | None = None
    text: str = Field(description="the entry's text, its spans joined exactly as remembered")
    spans: list[Span]
    verified: bool | None = Field(
        description="true: every line matched its check code; false: some did not (see unverified_lines); "
        "null: some page has no check codes"
    )
    unverified_lines: list[str] = Field(default_factory=list, description="'<page id>:<line>' of lines not verified")
    reader: str


class SearchHit(BaseModel):
    """A passage: lines `start`..`end` of one page, around the lines that matched the query."""

    page_id: str
    session: str
    tier: str
    score: float = Field(description="the best matching line's score: BM25 times the share of the query it holds")
    start: int = Field(description="first line number of the passage on the page")
    end: int = Field(description="last line number of the passage on the page")
    lines: list[Line] = Field(
        description="the passage's lines as the reader reads them now, fading included, each with its entry's "
        "role, time and title"
    )
    matches: list[int] = Field(
        default_factory=list,
        description="the line numbers in the passage that matched the query, best first; the rest is context",
    )
    role: str | None = Field(default=None, description="who said the entry of the best matching line")
    time: str | None = Field(default=None, description="when the entry of the best matching line was said (UTC)")
    title: str | None = Field(default=None, description="the title of the entry of the best matching line")
    also_on: list[str] = Field(
        default_factory=list, description="other pages holding the same matching lines, folded into this hit"
    )
    duplicates: int = Field(default=0, description="how many other passages held the same matching lines")


class SearchResult(BaseModel):
    query: str
    terms: list[str] = Field(description="the terms the query was cut into")
    hits: list[SearchHit]
    context: int = Field(default=0, description="lines of context asked for around each matching line")


class SessionInfo(BaseModel):
    name: str
    pages: int
    created: str
    updated: str
    open_page: str | None = None


class SessionList(BaseModel):
    sessions: list[SessionInfo]


class ForgetResult(BaseModel):
    forgotten: list[str] = Field(description="ids of the pages removed")
    sessions_removed: list[str] = Field(default_factory=list)
    erased: bool | None = Field(
        default=None,
        description="true: the freed space of the archive's files was overwritten, nothing forgotten can be "
        "carved out of them; false: another process still held some freed pages, the next forget erases "
        "them; null: this archive's storage cannot erase (see the README)",
    )
