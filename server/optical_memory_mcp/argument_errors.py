"""Tool argument errors in one line a model can act on: "start: Input should be greater than or equal to 1 (got 0)".

The SDK validates a tool's arguments against its signature before calling it, and answers a
mismatch with pydantic's multi-line report, which also carries error-type tags and a documentation
link per field ("1 validation error for read_linesArguments\\nstart\\n  Input should be ... [type=...,
input_value=0, input_type=int]\\n    For further information visit https://errors.pydantic.dev/...").
`ConciseArgumentErrors` is server middleware that rewrites such a tool result to
"<field>: <message> (got <value>)" per field, joined by "; ". Any other text is left as it is, so a
change in pydantic's wording costs only the tidying, never the error.
"""

from __future__ import annotations

import re
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

__all__ = ["ConciseArgumentErrors", "concise"]

_REPORT = re.compile(r"(?P<prefix>Error executing tool \S+: )\d+ validation errors? for \S+\n(?P<body>.*)", re.S)
_DETAIL = re.compile(r"\s*\[type=(?P<type>[^,\]]*)(?:, input_value=(?P<value>.*?), input_type=[^\]]*)?\]$")
SHOWN_VALUE_CHARS = 40  # a longer value is the caller's data, not a hint: left out


def concise(text: str) -> str:
    """pydantic's report of a tool's bad arguments, one field per clause; other text unchanged."""
    report = _REPORT.fullmatch(text)
    if report is None:
        return text
    clauses: list[str] = []
    field = "arguments"
    for line in report["body"].splitlines():
        if not line.startswith(" "):
            field = line.strip() or field
        elif not line.startswith("    "):  # the message; deeper lines are documentation links
            detail = _DETAIL.search(line)
            message = line[: detail.start()].strip() if detail else line.strip()
            # a missing field's "value" is all the arguments given: no hint
            value = detail["value"] if detail and detail["type"] != "missing" else None
            shown = f" (got {value})" if value is not None and len(value) <= SHOWN_VALUE_CHARS else ""
            clauses.append(f"{field}: {message}{shown}")
    return report["prefix"] + "; ".join(clauses) if clauses else text


class ConciseArgumentErrors:
    """Server middleware: tool results that report bad arguments, made concise (see `concise`)."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "tools/call" and isinstance(result, dict) and result.get("isError"):
            for block in result.get("content") or []:
                if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                    block["text"] = concise(block["text"])
        return result
