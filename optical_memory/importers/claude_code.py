"""Claude Code session transcripts: `~/.claude/projects/<project>/<session>.jsonl`.

Each line is one JSON record with `type`, `uuid`, `parentUuid`, `sessionId`, `timestamp` and, for
`user` and `assistant`, a `message` in the Messages API shape. How a file becomes messages:

* Thread, not file order. The records form a tree through `parentUuid`; edits and retries leave
  branches. The thread is the chain that ends at the file's last `user`/`assistant`/`system`
  record outside a sidechain, followed back to its root and emitted root first; other branches and
  subagent sidechains (`isSidechain`) are not imported, except in a file holding nothing else (a
  subagent's own transcript), where the sidechain is the thread. A compaction boundary has no `parentUuid`
  but a `logicalParentUuid`, which the walk follows, so the history before `/compact` is kept.
  A parent missing from the file (an earlier session's record, or a broken link) starts the thread
  there and is reported; a cycle is reported and cut. A uuid written twice (Claude Code rewrites
  rows on some compactions) counts once, as first written.
* One reply, one message. Claude Code writes each content block of an assistant reply as its own
  line, all sharing `message.id`; consecutive thread records with the same id are merged into one
  message, timed by its first line.
* Roles and text. `role` is `message.role`, so tool results (which arrive on `type: "user"` lines)
  are "user" messages reading "[tool_result Bash] ..."; blocks are rendered as `blocks` says, with a
  result named after the tool_use it answers. A `system` record with text becomes role "system".
  Records with no text (a signed-only thinking block, a system row without content) are skipped.
* Session and title. `session` is the thread's `sessionId` (the file name without ".jsonl" when
  absent): a uuid, unique across projects and what `claude --resume` takes; callers wanting one
  session per project can map it. `title` is the session's last `/rename` (`custom-title`), else
  its last `ai-title`, else the last `summary` whose `leafUuid` is on the thread.
* Summaries. Each `summary` line also becomes a note, `Message(role="summary", text=<summary>)`,
  before the thread (Claude Code writes them at the file's head), so no text in the file is lost.
* Other record types that carry no dialogue (file-history-snapshot, progress, queue-operation,
  agent-name, ...) are skipped quietly; a type this importer does not know is reported once, with
  its count and first line, so a format change cannot pass unnoticed.

`read_claude_code_in_order` is the reader `capture` uses on the lines a transcript grew by since
its last capture: there is no whole tree to walk, so it takes the dialogue records in file order
(what was said, as it was written, edits and retries included), still merging one reply's lines,
still leaving out subagent sidechains, and turning summaries (and the summary Claude Code writes
after `/compact`, `isCompactSummary`) into "summary" messages.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optical_memory.importers.base import Lines, Message, Problem, Record, Source, iso_time, json_values, jsonl_lines
from optical_memory.importers.blocks import content_text

__all__ = ["read_claude_code", "read_claude_code_in_order"]


DIALOGUE = frozenset({"user", "assistant", "system"})
# Record types known to carry no dialogue of their own (titles are read from the two title types).
QUIET = frozenset(
    {
        "summary",
        "custom-title",
        "ai-title",
        "agent-name",
        "file-history-snapshot",
        "progress",
        "queue-operation",
        "pr-link",
        "tag",
    }
)


@dataclass
class _Transcript:
    """What the first pass over the file collects."""

    records: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # uuid -> (line, record)
    leaf: str | None = None
    sidechain_leaf: str | None = None  # the leaf of a file holding only a subagent's sidechain
    summaries: list[tuple[str, object]] = field(default_factory=list)  # (text, leafUuid)
    custom_title: str | None = None
    ai_title: str | None = None
    tool_names: dict[str, str] = field(default_factory=dict)  # tool_use id -> tool name
    unknown: dict[str, tuple[int, int]] = field(default_factory=dict)  # type -> (first line, count)


@dataclass
class _Turn:
    """Thread records merged into one message."""

    role: str
    time: str | None
    message_id: str | None
    texts: list[str]
    line: int | None = None


def read_claude_code(source: Source) -> Iterator[Record]:
    """The transcript's summaries, then its thread's messages root first."""
    problems: list[Problem] = []
    transcript = _scan(jsonl_lines(source), problems)
    yield from problems
    thread, walk_problems = _thread(transcript)
    yield from walk_problems

    session = None if isinstance(source, bytes) else Path(source).stem
    if thread:
        leaf_session = thread[-1][1].get("sessionId")
        if isinstance(leaf_session, str) and leaf_session:
            session = leaf_session
    on_thread = {record["uuid"] for _, record in thread}
    summary_title = None
    for text, leaf in transcript.summaries:
        if isinstance(leaf, str) and leaf in on_thread:
            summary_title = text
    title = transcript.custom_title or transcript.ai_title or summary_title

    for text, _ in transcript.summaries:
        yield Message(role="summary", text=text, session=session, title=title)
    turns: list[_Turn] = []
    for number, record in thread:
        turn = yield from _turn(number, record, transcript.tool_names)
        if turn is not None:
            _merge(turns, turn)
    yield from _messages(turns, session, title)


def read_claude_code_in_order(lines: Lines, session: str | None = None) -> Iterator[Record]:
    """The dialogue records of `lines` in file order, for a transcript read piece by piece."""
    tool_names: dict[str, str] = {}
    seen: set[str] = set()
    turns: list[_Turn] = []
    for item in json_values(lines):
        if isinstance(item, Problem):
            yield item
            continue
        number, record = item
        if not isinstance(record, dict) or record.get("isSidechain"):
            continue
        kind, uuid = record.get("type"), record.get("uuid")
        if isinstance(uuid, str):
            if uuid in seen:
                continue
            seen.add(uuid)
        if kind == "summary" and isinstance(record.get("summary"), str) and record["summary"]:
            yield from _messages(turns, session, None)
            turns.clear()
            yield Message(role="summary", text=record["summary"], session=session, line=number)
            continue
        _collect_tool_names(record, tool_names)
        turn = yield from _turn(number, record, tool_names)
        if turn is not None:
            _merge(turns, turn)
    yield from _messages(turns, session, None)


def _merge(turns: list[_Turn], turn: _Turn) -> None:
    """Append `turn`, or extend the last one when both are lines of one reply (one message.id)."""
    last = turns[-1] if turns else None
    if last and turn.message_id and last.message_id == turn.message_id and last.role == turn.role:
        last.texts.extend(turn.texts)
    else:
        turns.append(turn)


def _messages(turns: list[_Turn], session: str | None, title: str | None) -> Iterator[Message]:
    for turn in turns:
        text = "\n".join(piece for piece in turn.texts if piece)
        if text:
            yield Message(role=turn.role, text=text, time=turn.time, session=session, title=title, line=turn.line)


def _scan(lines: Lines, problems: list[Problem]) -> _Transcript:
    transcript = _Transcript()
    for item in json_values(lines):
        if isinstance(item, Problem):
            problems.append(item)
            continue
        number, record = item
        if not isinstance(record, dict):
            problems.append(Problem(number, f"a {type(record).__name__}, not a transcript record; line skipped"))
            continue
        kind = record.get("type")
        if not isinstance(kind, str):
            problems.append(Problem(number, "record without a type; skipped"))
            continue
        if kind == "summary":
            text = record.get("summary")
            if isinstance(text, str) and text:
                transcript.summaries.append((text, record.get("leafUuid")))
            else:
                problems.append(Problem(number, "summary record without summary text; skipped"))
        elif kind == "custom-title" and isinstance(record.get("customTitle"), str):
            transcript.custom_title = record["customTitle"] or transcript.custom_title
        elif kind == "ai-title" and isinstance(record.get("aiTitle"), str):
            transcript.ai_title = record["aiTitle"] or transcript.ai_title
        elif kind not in DIALOGUE and kind not in QUIET:
            first, count = transcript.unknown.get(kind, (number, 0))
            transcript.unknown[kind] = (first, count + 1)

        uuid = record.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            if kind in DIALOGUE:
                problems.append(Problem(number, f"{kind} record without a uuid cannot be threaded; skipped"))
            continue
        transcript.records.setdefault(uuid, (number, record))
        if kind in DIALOGUE:
            if record.get("isSidechain"):
                transcript.sidechain_leaf = uuid
            else:
                transcript.leaf = uuid
        _collect_tool_names(record, transcript.tool_names)
    for name, (first, count) in transcript.unknown.items():
        records = "record" if count == 1 else f"{count} records"
        problems.append(Problem(first, f"{records} of unknown type {name} (first here) skipped: not dialogue"))
    return transcript


def _collect_tool_names(record: dict[str, Any], names: dict[str, str]) -> None:
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        for block in content:
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_use"
                and isinstance(block.get("id"), str)
                and isinstance(block.get("name"), str)
            ):
                names[block["id"]] = block["name"]


def _thread(transcript: _Transcript) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    """The chain from the root to the leaf, and what went wrong walking it."""
    chain: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    current = transcript.leaf or transcript.sidechain_leaf
    while current is not None:
        if current in seen:
            problems.append(Problem(chain[-1][0], f"parentUuid {current} closes a cycle; the thread starts here"))
            break
        seen.add(current)
        number, record = transcript.records[current]
        chain.append((number, record))
        parent = record.get("parentUuid") or record.get("logicalParentUuid")
        if parent is None:
            break
        if not isinstance(parent, str) or parent not in transcript.records:
            problems.append(
                Problem(
                    number,
                    f"parent {parent} is not in this file (a record of an earlier session, or a broken link); "
                    "the thread starts here",
                )
            )
            break
        current = parent
    chain.reverse()
    return chain, problems


def _turn(number: int, record: dict[str, Any], tool_names: dict[str, str]) -> Generator[Problem, None, _Turn | None]:
    """The thread record as a `_Turn` (the generator's return value), None when it holds no text."""
    kind = record.get("type")
    try:
        time = iso_time(record.get("timestamp"))
    except ValueError as exc:
        yield Problem(number, f"{exc}; message kept without a time")
        time = None
    if kind == "system":
        content = record.get("content")
        if isinstance(content, str) and content:
            return _Turn("system", time, None, [content], number)
        return None
    if kind not in ("user", "assistant"):
        return None  # a non-dialogue record that merely links the chain (e.g. progress)
    message = record.get("message")
    if not isinstance(message, dict):
        yield Problem(number, f"{kind} record without a message object; skipped")
        return None
    role = message.get("role") or kind
    if not isinstance(role, str):
        yield Problem(number, f"message.role is a {type(role).__name__}, not a string; skipped")
        return None
    try:
        text = content_text(message.get("content"), tool_names)
    except ValueError as exc:
        yield Problem(number, f"{exc}; skipped")
        return None
    message_id = message.get("id")
    if record.get("isCompactSummary"):  # the summary Claude Code writes after /compact, on a user line
        role = "summary"
    return _Turn(role, time, message_id if isinstance(message_id, str) else None, [text], number)
