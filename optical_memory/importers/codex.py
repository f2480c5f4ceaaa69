"""Codex CLI session files: `~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl`.

Each line is `{"timestamp": ..., "type": ..., "payload": {...}}`, appended as the session goes:

    session_meta    the session's `id` and `cwd` (first line): the messages' session is the id
    response_item   what the model was given and said, by `payload.type`:
        message               role user or assistant; its input_text / output_text parts, an image as
                              "[image: URL]" (a data URL as "[image: image/png]"); role developer
                              (Codex's own instructions) is skipped quietly
        function_call         "[tool_use NAME] ARGUMENTS" (role assistant)
        function_call_output  "[tool_result NAME] OUTPUT" (role tool), named after the call with
                              the same call_id; likewise custom_tool_call and its output
        local_shell_call      "[tool_use shell] COMMAND"
        reasoning             "[thinking] SUMMARY" from its summary texts (the encrypted content
                              holds nothing readable); a reasoning item without summary is skipped
        web_search_call       "[web_search] QUERY"
        any other type        "[TYPE]", so nothing disappears without a trace
    compacted       the summary Codex writes when it compacts the context: a "summary" message
    turn_context, event_msg   settings, and runtime events that repeat the response items: skipped

User messages that are Codex's own context rather than something the user typed (a message that
is only an `<environment_context>`, `<user_instructions>` or AGENTS.md block, sent at the start of
every session) are skipped quietly. Files written before the envelope existed (2025) hold a first
line `{id, timestamp, instructions}` and then bare response items and `{"record_type": "state"}`
lines; they are read the same way. A line that is not JSON or not a record is reported with its
line number; a record type this importer does not know is reported once with its count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from optical_memory.importers.base import Lines, Message, Problem, Record, Source, iso_time, json_values, jsonl_lines

__all__ = ["read_codex", "read_codex_lines", "rollout_cwd"]


QUIET = frozenset({"turn_context", "event_msg"})
CONTEXT_PREFIXES = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions")
ITEM_TYPES = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "local_shell_call",
        "reasoning",
        "web_search_call",
    }
)


@dataclass
class _State:
    session: str | None
    tool_names: dict[str, str] = field(default_factory=dict)  # call_id -> tool name
    unknown: dict[str, tuple[int, int]] = field(default_factory=dict)  # type -> (first line, count)


def read_codex(source: Source) -> Iterator[Record]:
    """Every message of a Codex rollout file, in file order."""
    return read_codex_lines(jsonl_lines(source))


def read_codex_lines(lines: Lines, session: str | None = None) -> Iterator[Record]:
    """The messages of rollout `lines` (all of a file, or the lines it grew by since a capture)."""
    state = _State(session)
    for item in json_values(lines):
        if isinstance(item, Problem):
            yield item
            continue
        number, record = item
        if not isinstance(record, dict):
            yield Problem(number, f"a {type(record).__name__}, not a rollout record; line skipped")
            continue
        yield from _record(number, record, state)
    for name, (first, count) in state.unknown.items():
        records = "record" if count == 1 else f"{count} records"
        yield Problem(first, f"{records} of unknown type {name} (first here) skipped: not dialogue")


def rollout_cwd(record: object) -> str | None:
    """The working directory a rollout line names (a session_meta or turn_context line), if any."""
    if isinstance(record, dict) and record.get("type") in ("session_meta", "turn_context"):
        payload = record.get("payload")
        cwd = payload.get("cwd") if isinstance(payload, dict) else None
        return cwd if isinstance(cwd, str) and cwd else None
    return None


def _record(number: int, record: dict[str, Any], state: _State) -> Iterator[Record]:
    kind = record.get("type")
    payload = record.get("payload")
    if kind is None and "record_type" in record:
        return  # an old file's state line
    if kind in ITEM_TYPES and payload is None:  # an old file's bare response item
        kind, payload = "response_item", record
    if kind is None and isinstance(record.get("id"), str) and "instructions" in record:
        state.session = state.session or record["id"]  # an old file's first line
        return
    if kind == "session_meta":
        ident = payload.get("id") if isinstance(payload, dict) else None
        if isinstance(ident, str) and ident and state.session is None:
            state.session = ident
        return
    if not isinstance(kind, str):
        yield Problem(number, "record without a type; skipped")
        return
    if kind in QUIET:
        return
    try:
        time = iso_time(record.get("timestamp"))
    except ValueError as exc:
        yield Problem(number, f"{exc}; message kept without a time")
        time = None
    if kind == "compacted":
        text = payload.get("message") if isinstance(payload, dict) else None
        if isinstance(text, str) and text:
            yield Message(role="summary", text=text, time=time, session=state.session, line=number)
        return
    if kind != "response_item":
        first, count = state.unknown.get(kind, (number, 0))
        state.unknown[kind] = (first, count + 1)
        return
    if not isinstance(payload, dict):
        yield Problem(number, "response_item without a payload object; skipped")
        return
    try:
        role, text = _item(payload, state)
    except ValueError as exc:
        yield Problem(number, f"{exc}; skipped")
        return
    except RecursionError:
        yield Problem(number, "a response item nested too deeply to write out; skipped")
        return
    if text:
        yield Message(role=role, text=text, time=time, session=state.session, line=number)


def _item(item: dict[str, Any], state: _State) -> tuple[str, str]:
    """(role, text) of one response item; text "" for one that is skipped quietly."""
    kind = item.get("type")
    if kind == "message":
        return _message(item)
    if kind in ("function_call", "custom_tool_call"):
        name = _string(item.get("name")) or "?"
        call_id = item.get("call_id")
        if isinstance(call_id, str):
            state.tool_names[call_id] = name
        arguments = item.get("arguments", item.get("input"))
        body = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        return "assistant", f"[tool_use {name}] {body}"
    if kind in ("function_call_output", "custom_tool_call_output"):
        name = state.tool_names.get(str(item.get("call_id")), "")
        label = f"tool_result {name}" if name else "tool_result"
        body = _output_text(item.get("output"))
        return "tool", f"[{label}] {body}" if body else f"[{label}]"
    if kind == "local_shell_call":
        action = item.get("action")
        command = action.get("command") if isinstance(action, dict) else None
        shown = " ".join(command) if isinstance(command, list) else json.dumps(action, ensure_ascii=False)
        return "assistant", f"[tool_use shell] {shown}"
    if kind == "reasoning":
        summary = item.get("summary")
        parts = summary if isinstance(summary, list) else []
        texts = [_string(part.get("text")) for part in parts if isinstance(part, dict)]
        body = "\n".join(text for text in texts if text)
        return "assistant", f"[thinking] {body}" if body else ""
    if kind == "web_search_call":
        action = item.get("action")
        query = _string(action.get("query")) if isinstance(action, dict) else ""
        return "assistant", f"[web_search] {query}" if query else "[web_search]"
    return "assistant", f"[{kind}]" if isinstance(kind, str) and kind else "[item without a type]"


def _message(item: dict[str, Any]) -> tuple[str, str]:
    role = item.get("role")
    if not isinstance(role, str) or not role:
        raise ValueError("message without a role")
    if role in ("developer", "system"):
        return role, ""  # Codex's own instructions, the same in every session
    content = item.get("content")
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = [_part_text(part) for part in content]
    else:
        raise ValueError(f"message content is a {type(content).__name__}, not a list of parts")
    text = "\n".join(part for part in parts if part)
    if role == "user" and text.lstrip().startswith(CONTEXT_PREFIXES):
        return role, ""
    return role, text


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise ValueError(f"a message part is a {type(part).__name__}, not an object")
    if isinstance(part.get("text"), str):
        return str(part["text"])
    url = part.get("image_url")
    if isinstance(url, str):
        if url.startswith("data:"):
            return f"[image: {url[5:].split(';', 1)[0] or 'inline'}]"
        return f"[image: {url}]"
    kind = part.get("type")
    return f"[{kind}]" if isinstance(kind, str) and kind else "[part]"


def _output_text(output: object) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        return _output_text(output.get("content"))
    if isinstance(output, list):
        return "\n".join(_part_text(part) for part in output if isinstance(part, dict | str))
    return "" if output is None else json.dumps(output, ensure_ascii=False)


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""
