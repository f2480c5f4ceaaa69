"""Page records: the JSON kept for each page, which holds layout and bookkeeping but never text.

::

    id, number, session, created, updated, sealed, sealed_at,
    tier          index into the configured tiers
    codec, image_bytes
    geometry      render.Geometry of the stored image (scaled with its tier)
    rows          one code per used row: 0 header, +n first row of line n, -n continuation of line n
    lines         line numbers on the page run 1..lines
    continued     line 1 continues the last line of the session's previous page
    continues     the last line continues on the next page
    characters, text_tokens   of the text on the page (counted when it was laid out)
    title         the first entry title on the page
    entries       [{role, time, title, first_line, last_line}] one per remember call on the page
"""

from __future__ import annotations

from typing import Any

from optical_memory.pages import PagePlan
from optical_memory.render import Geometry
from optical_memory.results import PageInfo
from optical_memory.tiers import Tier
from optical_memory.tokens import claude_image_tokens, deepseek_vision_tokens, estimate_text_tokens

__all__ = ["apply_plan", "new_record", "new_session", "page_info"]


def new_session(sid: int, created: str, updated: str | None = None) -> dict[str, Any]:
    """A session record: its id in the page indexes, its open page (and how full it is), its page count."""
    return {
        "sid": sid,
        "open_page": None,
        "open_rows": 0,
        "open_lines": 0,
        "pages": 0,
        "created": created,
        "updated": updated or created,
    }


def new_record(page_id: str, number: int, session: str, stamp: str, geometry: Geometry, hot: Tier) -> dict[str, Any]:
    return {
        "id": page_id,
        "number": number,
        "session": session,
        "created": stamp,
        "updated": stamp,
        "sealed": False,
        "sealed_at": None,
        "tier": 0,
        "codec": hot.codec,
        "image_bytes": 0,
        "geometry": geometry.to_dict(),
        "rows": [],
        "lines": 0,
        "continued": False,
        "continues": False,
        "characters": 0,
        "text_tokens": 0,
        "title": None,
        "entries": [],
    }


def apply_plan(
    record: dict[str, Any], plan: PagePlan, role: str | None, title: str | None, stamp: str, size: int
) -> None:
    """Account for an entry's rows written onto the page `record` (image of `size` bytes now)."""
    if record["lines"] == 0 and plan.continued:
        record["continued"] = True
    record["rows"].extend(row.code for row in plan.rows)
    record["lines"] = plan.last_line or record["lines"]
    record["continues"] = plan.continues
    record["characters"] += sum(len(piece) for piece in plan.pieces)
    record["text_tokens"] += estimate_text_tokens("\n".join(plan.pieces))
    record["entries"].append(
        {"role": role, "time": stamp, "title": title, "first_line": plan.first_line, "last_line": plan.last_line}
    )
    if record["title"] is None and title:
        record["title"] = title
    record["updated"] = stamp
    record["image_bytes"] = size
    if plan.sealed:
        record["sealed"] = True
        record["sealed_at"] = stamp


def page_info(record: dict[str, Any], tier: Tier) -> PageInfo:
    """The public description of a page at its current tier."""
    geometry = Geometry.from_dict(record["geometry"])
    return PageInfo(
        id=record["id"],
        session=record["session"],
        created=record["created"],
        updated=record["updated"],
        tier=tier.name,
        tier_index=record["tier"],
        sealed=record["sealed"],
        lines=record["lines"],
        characters=record["characters"],
        text_tokens=record["text_tokens"],
        image_width=geometry.width,
        image_height=geometry.height,
        image_bytes=record["image_bytes"],
        image_format=record["codec"],
        image_tokens=claude_image_tokens(geometry.width, geometry.height),
        vision_tokens=deepseek_vision_tokens(geometry.width, geometry.height),
        px_per_char=round(geometry.px_per_char, 2),
        title=record["title"],
        recalled_from=record.get("recalled_from"),
    )
