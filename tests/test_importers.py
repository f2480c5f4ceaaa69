"""Importers: each format's realistic file, written here, read back as exact messages and problems."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.errors import InvalidArgument
from optical_memory.importers import Message, Problem, Record, detect_format, read_messages

SID = "8d4c1f2e-6b1a-4c55-9a0e-3f1b2c4d5e6f"
PNG_12_BYTES = "iVBORw0KGgoxMjM0"  # base64 of b"\x89PNG\r\n\x1a\n1234"


def split(records: list[Record]) -> tuple[list[Message], list[Problem]]:
    return [r for r in records if isinstance(r, Message)], [r for r in records if isinstance(r, Problem)]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def dumps(record: object) -> str:
    return json.dumps(record, ensure_ascii=False)


# --- Claude Code ---------------------------------------------------------------------------------


def cc(kind: str, uuid: str, parent: str | None, at: str, message: dict[str, Any] | None = None, **extra: Any) -> str:
    record: dict[str, Any] = {
        "parentUuid": parent,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/ada/shop",
        "sessionId": SID,
        "version": "1.0.51",
        "type": kind,
        "uuid": uuid,
        "timestamp": at,
    }
    if message is not None:
        record["message"] = message
    record.update(extra)
    return dumps(record)


def reply(message_id: str, *blocks: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4",
        "content": list(blocks),
    }


def user(content: object) -> dict[str, Any]:
    return {"role": "user", "content": content}


CLAUDE_CODE_LINES = [
    # 1: Claude Code's title for the thread ending at a5
    dumps({"type": "summary", "summary": "Fix the flaky login test", "leafUuid": "a5"}),
    # 2: no dialogue, skipped quietly
    dumps({"type": "file-history-snapshot", "messageId": "u1", "snapshot": {}, "isSnapshotUpdate": False}),
    # 3: the root
    cc("user", "u1", None, "2025-06-02T18:46:59.937Z", user("Why does test_login fail?")),
    # 4-6: one reply written as three lines sharing message.id
    cc(
        "assistant",
        "a1",
        "u1",
        "2025-06-02T18:47:03.101Z",
        reply("msg_1", {"type": "thinking", "thinking": "Probably a race.", "signature": "x"}),
    ),
    cc("assistant", "a2", "a1", "2025-06-02T18:47:03.550Z", reply("msg_1", {"type": "text", "text": "Let me run it."})),
    cc(
        "assistant",
        "a3",
        "a2",
        "2025-06-02T18:47:04.002Z",
        reply("msg_1", {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "pytest -k login"}}),
    ),
    # 7: the tool's result arrives on a user line, named after the tool_use it answers
    cc(
        "user",
        "r1",
        "a3",
        "2025-06-02T18:47:09.000Z",
        user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "1 failed, 12 passed"}]),
        toolUseResult={"stdout": "1 failed, 12 passed"},
    ),
    # 8: a truncated line
    '{"parentUuid":"r1","type":"assistant","uuid":"b0","message":{"id":"msg_x","content":[{"type":"te',
    # 9: the first answer to r1, abandoned when the user retried
    cc(
        "assistant",
        "b1",
        "r1",
        "2025-06-02T18:47:12.000Z",
        reply("msg_2", {"type": "text", "text": "Looks fine to me."}),
    ),
    # 10: written before its parent (line 11): threading follows parentUuid, not file order
    cc(
        "user",
        "u2",
        "a4",
        "2025-06-02T18:48:30.000Z",
        user(
            [
                {"type": "text", "text": "Here is the CI log."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_12_BYTES}},
            ]
        ),
    ),
    # 11: the retried answer to r1, on the thread
    cc(
        "assistant",
        "a4",
        "r1",
        "2025-06-02T18:48:01.000Z",
        reply("msg_3", {"type": "text", "text": "The fixture shares state."}),
    ),
    # 12: a record type this importer does not know
    dumps({"type": "telemetry-blob", "uuid": "t1", "parentUuid": None, "sessionId": SID}),
    # 13-14: a reply whose tool failed (result content as blocks, is_error)
    cc(
        "assistant",
        "a5",
        "u2",
        "2025-06-02T18:48:40.000Z",
        reply(
            "msg_4",
            {
                "type": "tool_use",
                "id": "toolu_2",
                "name": "Edit",
                "input": {
                    "file_path": "tests/conftest.py",
                    "old_string": 'scope="session"',
                    "new_string": 'scope="function"',
                },
            },
        ),
    ),
    cc(
        "user",
        "r2",
        "a5",
        "2025-06-02T18:48:41.000Z",
        user(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "is_error": True,
                    "content": [{"type": "text", "text": "File has been modified since read"}],
                }
            ]
        ),
    ),
    # 15-17: /compact: the boundary has no parentUuid, only a logicalParentUuid
    cc(
        "system",
        "s1",
        None,
        "2025-06-02T19:00:00.000Z",
        subtype="compact_boundary",
        content="Conversation compacted",
        logicalParentUuid="r2",
        level="info",
    ),
    cc(
        "user",
        "u3",
        "s1",
        "2025-06-02T19:00:01.000Z",
        user("This session is being continued from a previous conversation."),
        isCompactSummary=True,
    ),
    cc(
        "assistant",
        "a6",
        "u3",
        "2025-06-02T19:00:05.000Z",
        reply("msg_5", {"type": "text", "text": "Continuing: re-reading conftest.py."}),
    ),
    # 18: a subagent's sidechain, written last, is not the thread's leaf
    cc("user", "side1", None, "2025-06-02T19:00:06.000Z", user("Search the repo for 'login'"), isSidechain=True),
]


def test_claude_code_transcript_threads_merges_and_renders_blocks(tmp_path: Path) -> None:
    path = write_lines(tmp_path / ".claude" / "projects" / "-home-ada-shop" / f"{SID}.jsonl", CLAUDE_CODE_LINES)
    assert detect_format(path) == "claude-code"
    messages, problems = split(list(read_messages(path)))

    title = "Fix the flaky login test"

    def m(role: str, text: str, time: str | None) -> Message:
        return Message(role=role, text=text, time=time, session=SID, title=title)

    assert messages == [
        m("summary", "Fix the flaky login test", None),
        m("user", "Why does test_login fail?", "2025-06-02T18:46:59Z"),
        m(
            "assistant",
            '[thinking] Probably a race.\nLet me run it.\n[tool_use Bash] {"command": "pytest -k login"}',
            "2025-06-02T18:47:03Z",
        ),
        m("user", "[tool_result Bash] 1 failed, 12 passed", "2025-06-02T18:47:09Z"),
        m("assistant", "The fixture shares state.", "2025-06-02T18:48:01Z"),
        m("user", "Here is the CI log.\n[image: image/png, 12 bytes]", "2025-06-02T18:48:30Z"),
        m(
            "assistant",
            '[tool_use Edit] {"file_path": "tests/conftest.py", "old_string": "scope=\\"session\\"", '
            '"new_string": "scope=\\"function\\""}',
            "2025-06-02T18:48:40Z",
        ),
        m("user", "[tool_result Edit error] File has been modified since read", "2025-06-02T18:48:41Z"),
        m("system", "Conversation compacted", "2025-06-02T19:00:00Z"),
        m("summary", "This session is being continued from a previous conversation.", "2025-06-02T19:00:01Z"),
        m("assistant", "Continuing: re-reading conftest.py.", "2025-06-02T19:00:05Z"),
    ]
    assert [p.line for p in problems] == [8, 12]
    assert "not valid JSON" in problems[0].message
    assert "unknown type telemetry-blob" in problems[1].message


def test_claude_code_titles_a_rename_and_reports_a_missing_parent(tmp_path: Path) -> None:
    """A /rename beats the summary; a thread whose root's parent lives in another file starts there, reported."""
    lines = [
        dumps({"type": "summary", "summary": "Title of an older session", "leafUuid": "elsewhere"}),
        cc("user", "u1", "in-the-previous-file", "2025-06-02T18:46:59Z", user("go on")),
        cc(
            "assistant",
            "a1",
            "u1",
            "2025-06-02T18:47:00Z",
            reply("msg_1", {"type": "thinking", "thinking": "", "signature": "s"}),
        ),
        cc("assistant", "a2", "a1", "2025-06-02T18:47:01Z", reply("msg_1", {"type": "text", "text": "Done."})),
        cc("assistant", "a3", "a2", "not a time", reply("msg_2", {"type": "redacted_thinking", "data": "..."})),
        dumps({"type": "custom-title", "customTitle": "login flake", "sessionId": SID}),
    ]
    path = write_lines(tmp_path / "renamed.jsonl", lines)
    messages, problems = split(list(read_messages(path, format="claude-code")))
    assert messages == [
        Message("summary", "Title of an older session", None, SID, "login flake"),
        Message("user", "go on", "2025-06-02T18:46:59Z", SID, "login flake"),
        # the signed-only thinking line adds nothing; the reply is the text line merged into it
        Message("assistant", "Done.", "2025-06-02T18:47:00Z", SID, "login flake"),
        Message("assistant", "[redacted thinking]", None, SID, "login flake"),
    ]
    assert [(p.line, p.message.split(" (")[0]) for p in problems] == [
        (2, "parent in-the-previous-file is not in this file"),
        (5, "not an ISO 8601 time: 'not a time'; message kept without a time"),
    ]


# --- claude.ai export ----------------------------------------------------------------------------

CLAUDE_AI_EXPORT = [
    {
        "uuid": "0c9a8e7d-1111-4a2b-9c3d-000000000001",
        "name": "Three days in Lisbon",
        "created_at": "2024-03-15T10:20:28.000000+00:00",
        "updated_at": "2024-03-15T10:25:00.000000+00:00",
        "account": {"uuid": "acc-1"},
        "chat_messages": [
            {
                "uuid": "m1",
                "text": "Plan three days in Lisbon.",
                "content": [{"type": "text", "text": "Plan three days in Lisbon."}],
                "sender": "human",
                "created_at": "2024-03-15T10:20:30.123456+00:00",
                "attachments": [],
                "files": [],
            },
            {
                "uuid": "m2",
                "text": "Day 1: Alfama.",
                "content": [
                    {"type": "thinking", "thinking": "Start with the old town."},
                    {"type": "text", "text": "Day 1: Alfama."},
                ],
                "sender": "assistant",
                "created_at": "2024-03-15T12:20:41+02:00",
                "attachments": [],
                "files": [],
            },
            {
                "uuid": "m3",
                "text": "Keep it within this budget.",
                "sender": "human",
                "created_at": "2024-03-15T10:22:00Z",
                "attachments": [{"file_name": "budget.txt", "file_size": 15, "extracted_content": "600 EUR in all"}],
                "files": [{"file_name": "map.png"}],
            },
        ],
    },
    {
        "uuid": "0c9a8e7d-1111-4a2b-9c3d-000000000002",
        "name": "",
        "created_at": "2024-04-01T08:00:00Z",
        "chat_messages": [
            {"uuid": "n1", "text": "who sent this?", "created_at": "2024-04-01T08:00:00Z"},
            {"uuid": "n2", "text": "hello", "sender": "human", "created_at": "2024-04-01T08:00:05Z"},
            {"uuid": "n3", "text": "", "content": [], "sender": "assistant", "created_at": "2024-04-01T08:00:06Z"},
        ],
    },
    {
        "uuid": "0c9a8e7d-1111-4a2b-9c3d-000000000003",
        "name": "Retried",
        "chat_messages": [
            {
                "uuid": "k1",
                "parent_message_uuid": "00000000-0000-4000-8000-000000000000",
                "text": "Name a colour.",
                "sender": "human",
            },
            {"uuid": "k2", "parent_message_uuid": "k1", "text": "Red.", "sender": "assistant"},
            {"uuid": "k3", "parent_message_uuid": "k1", "text": "Teal.", "sender": "assistant"},
        ],
    },
    "not a conversation",
]


def test_claude_ai_export(tmp_path: Path) -> None:
    path = tmp_path / "claude" / "conversations.json"
    path.parent.mkdir()
    path.write_text(json.dumps(CLAUDE_AI_EXPORT, indent=2), encoding="utf-8")
    assert detect_format(path) == "claude-ai"
    messages, problems = split(list(read_messages(path)))
    lisbon, untitled, retried = (f"0c9a8e7d-1111-4a2b-9c3d-00000000000{n}" for n in (1, 2, 3))
    assert messages == [
        Message("user", "Plan three days in Lisbon.", "2024-03-15T10:20:30Z", lisbon, "Three days in Lisbon"),
        Message(
            "assistant",
            "[thinking] Start with the old town.\nDay 1: Alfama.",
            "2024-03-15T10:20:41Z",
            lisbon,
            "Three days in Lisbon",
        ),
        Message(
            "user",
            "Keep it within this budget.\n[attachment: budget.txt]\n600 EUR in all\n[file: map.png]",
            "2024-03-15T10:22:00Z",
            lisbon,
            "Three days in Lisbon",
        ),
        Message("user", "hello", "2024-04-01T08:00:05Z", untitled, None),
        Message("user", "Name a colour.", None, retried, "Retried"),
        Message("assistant", "Teal.", None, retried, "Retried"),
    ]
    assert problems == [
        Problem(None, f"conversation 2 ({untitled}), message 1 has no sender; skipped"),
        Problem(None, "conversation 4 is not an object; skipped"),
    ]


# --- ChatGPT export ------------------------------------------------------------------------------


def node(node_id: str, parent: str | None, children: list[str], message: dict[str, Any] | None) -> tuple[str, Any]:
    return node_id, {"id": node_id, "message": message, "parent": parent, "children": children}


def gpt(
    role: str,
    content: dict[str, Any],
    at: float | None,
    *,
    name: str | None = None,
    recipient: str = "all",
    **meta: Any,
) -> dict[str, Any]:
    return {
        "id": f"msg-{at}",
        "author": {"role": role, "name": name, "metadata": {}},
        "create_time": at,
        "update_time": None,
        "content": content,
        "status": "finished_successfully",
        "end_turn": None,
        "weight": 1.0,
        "metadata": meta,
        "recipient": recipient,
    }


def parts(*items: object) -> dict[str, Any]:
    return {"content_type": "text", "parts": list(items)}


CHATGPT_EXPORT = [
    {
        "title": "Powers of two",
        "create_time": 1700000000.0,
        "update_time": 1700000100.0,
        "mapping": dict(
            [
                node("root", None, ["sys"], None),
                node("sys", "root", ["u1"], gpt("system", parts(""), None, is_visually_hidden_from_conversation=True)),
                node("u1", "sys", ["a1", "a2"], gpt("user", parts("What is 2**10?"), 1700000000.5)),
                node("a1", "u1", [], gpt("assistant", parts("1000."), 1700000010.0)),  # the first, rejected answer
                node("a2", "u1", ["u2"], gpt("assistant", parts("2**10 = 1024."), 1700000042.0)),  # regenerated
                node(
                    "u2",
                    "a2",
                    ["c1"],
                    gpt(
                        "user",
                        {
                            "content_type": "multimodal_text",
                            "parts": [
                                {
                                    "content_type": "image_asset_pointer",
                                    "asset_pointer": "file-service://file-abc",
                                    "size_bytes": 2048,
                                    "width": 64,
                                    "height": 32,
                                },
                                "And 2**20?",
                            ],
                        },
                        1700000050.0,
                    ),
                ),
                node(
                    "c1",
                    "u2",
                    ["t1"],
                    gpt(
                        "assistant",
                        {"content_type": "code", "language": "unknown", "text": "2**20"},
                        1700000055.0,
                        recipient="python",
                    ),
                ),
                node(
                    "t1",
                    "c1",
                    ["x1"],
                    gpt("tool", {"content_type": "execution_output", "text": "1048576"}, 1700000056.0, name="python"),
                ),
                node("x1", "t1", ["a3"], {"id": "broken", "content": parts("no author")}),
                node("a3", "x1", [], gpt("assistant", parts("2**20 = 1,048,576."), 1700000060.0)),
            ]
        ),
        "moderation_results": [],
        "current_node": "a3",
        "conversation_id": "67a1b2c3-0000-8000-9000-000000000001",
        "id": "67a1b2c3-0000-8000-9000-000000000001",
    },
    {"title": "Broken", "id": "67a1b2c3-0000-8000-9000-000000000002", "mapping": None},
]


def test_chatgpt_export_follows_the_current_branch(tmp_path: Path) -> None:
    path = tmp_path / "chatgpt" / "conversations.json"
    path.parent.mkdir()
    path.write_text(json.dumps(CHATGPT_EXPORT), encoding="utf-8")
    assert detect_format(path) == "chatgpt"
    messages, problems = split(list(read_messages(path)))
    session, title = "67a1b2c3-0000-8000-9000-000000000001", "Powers of two"
    assert messages == [
        Message("user", "What is 2**10?", "2023-11-14T22:13:20Z", session, title),
        Message("assistant", "2**10 = 1024.", "2023-11-14T22:14:02Z", session, title),
        Message(
            "user", "[image: file-service://file-abc, 2048 bytes]\nAnd 2**20?", "2023-11-14T22:14:10Z", session, title
        ),
        Message("assistant", "[tool_use python] 2**20", "2023-11-14T22:14:15Z", session, title),
        Message("tool", "[tool_result python] 1048576", "2023-11-14T22:14:16Z", session, title),
        Message("assistant", "2**20 = 1,048,576.", "2023-11-14T22:14:20Z", session, title),
    ]
    assert problems == [
        Problem(None, "conversation 1 (Powers of two), node x1: message has no author.role; skipped"),
        Problem(None, "conversation 2 (Broken) has no mapping; skipped"),
    ]


# --- JSONL and text ------------------------------------------------------------------------------


def test_jsonl_messages_and_bad_records(tmp_path: Path) -> None:
    lines = [
        dumps({"role": "user", "content": "hi", "timestamp": "2025-01-02T03:04:05+01:00"}),
        "",
        dumps(
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}],
                "time": 1735787045,
            }
        ),
        "{not json",
        dumps({"content": "who said this?"}),
        dumps({"role": "user", "content": 42}),
        dumps({"role": "user", "content": "late", "timestamp": "yesterday", "session": "s1", "title": "t"}),
        dumps(["role", "content"]),
        dumps({"role": "user", "content": ""}),
    ]
    path = write_lines(tmp_path / "chat.jsonl", lines)
    (tmp_path / "latin1.jsonl").write_bytes(
        b'{"role": "user", "content": "ok"}\n{"role": "user", "content": "caf\xe9"}\n'
    )
    assert detect_format(path) == "jsonl"
    records = list(read_messages(path))
    assert records == [
        Message("user", "hi", "2025-01-02T02:04:05Z"),
        Message("assistant", "hello\nthere", "2025-01-02T03:04:05Z"),
        Problem(4, "not valid JSON (Expecting property name enclosed in double quotes at column 2); line skipped"),
        Problem(5, "no role (a non-empty string is needed); line skipped"),
        Problem(6, "content is a int, not a string or a list of blocks; line skipped"),
        Problem(7, "not an ISO 8601 time: 'yesterday'; message kept without a time"),
        Message("user", "late", None, "s1", "t"),
        Problem(8, "a list, not a {role, content} object; line skipped"),
        Problem(9, "the message has no text; line skipped"),
    ]
    assert list(read_messages(tmp_path / "latin1.jsonl")) == [
        Message("user", "ok"),
        Problem(2, "not valid UTF-8 (byte 0xe9 at column 33); line skipped"),
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.text(min_size=1)), min_size=1, max_size=5))
def test_jsonl_round_trips_any_unicode(pairs: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "messages.jsonl"
        write_lines(path, [dumps({"role": role, "content": content}) for role, content in pairs])
        assert list(read_messages(path)) == [Message(role, content) for role, content in pairs]


def test_markdown_file_is_one_document(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(b"# Deploy notes\r\n\r\nRun `make release`.\r\n## Rollback\r\n# not a heading in code\r\n\r\n")
    os.utime(path, (1735787045, 1735787045))
    assert detect_format(path) == "text"
    assert list(read_messages(path)) == [
        Message(
            "document",
            "# Deploy notes\n\nRun `make release`.\n## Rollback\n# not a heading in code",
            "2025-01-02T03:04:05Z",
            None,
            "notes.md",
        )
    ]
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    assert list(read_messages(tmp_path / "empty.txt")) == [Problem(None, "the file is empty; nothing to import")]
    (tmp_path / "bad.txt").write_bytes(b"fine\nstill fine\nbad \xff here\n")
    assert list(read_messages(tmp_path / "bad.txt")) == [
        Problem(3, "not valid UTF-8 (byte 0xff); file skipped: convert it to UTF-8")
    ]


# --- detection -----------------------------------------------------------------------------------


def test_detection_and_its_errors(tmp_path: Path) -> None:
    other = tmp_path / "conversations.json"
    other.write_text(json.dumps([{"title": "no tree here"}]), encoding="utf-8")
    with pytest.raises(InvalidArgument, match="neither a ChatGPT export"):
        detect_format(other)
    with pytest.raises(InvalidArgument, match="not a file"):
        detect_format(tmp_path)
    with pytest.raises(InvalidArgument, match="unknown import format 'yaml'"):
        read_messages(other, format="yaml")  # type: ignore[arg-type]
    log = write_lines(tmp_path / "chat.log", [dumps({"role": "user", "content": "hi"})])
    assert detect_format(log) == "jsonl"
    plain = tmp_path / "README"
    plain.write_text("just words\n", encoding="utf-8")
    assert detect_format(plain) == "text"
    broken = tmp_path / "broken.json"
    broken.write_text('[{"mapping": {}, "title": "x"},\n  {oops}]', encoding="utf-8")
    assert detect_format(broken) == "chatgpt"
    assert list(read_messages(broken)) == [
        Problem(2, "not valid JSON (Expecting property name enclosed in double quotes at column 4); nothing imported")
    ]


def test_claude_code_subagent_file_is_its_own_thread(tmp_path: Path) -> None:
    lines = [
        cc("user", "s1", None, "2025-06-02T19:00:06Z", user("Search the repo for 'login'"), isSidechain=True),
        cc(
            "assistant",
            "s2",
            "s1",
            "2025-06-02T19:00:09Z",
            reply("msg_9", {"type": "text", "text": "3 hits."}),
            isSidechain=True,
        ),
    ]
    path = write_lines(tmp_path / "agent-1a2b.jsonl", lines)
    assert [(m.role, m.text) for m in split(list(read_messages(path)))[0]] == [
        ("user", "Search the repo for 'login'"),
        ("assistant", "3 hits."),
    ]


# --- robustness: any value anywhere in a realistic file gives messages and problems, never a crash ---

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: object) -> Any:
    if not path:
        return new
    copy = value.copy()
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


CLAUDE_CODE_RECORDS = [json.loads(line) for line in CLAUDE_CODE_LINES if line.endswith("}")]


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(["claude-code", "claude-ai", "chatgpt"]), JSON)
def test_importers_survive_any_value_anywhere(data: st.DataObject, format: str, new: object) -> None:
    fixture = {"claude-code": CLAUDE_CODE_RECORDS, "claude-ai": CLAUDE_AI_EXPORT, "chatgpt": CHATGPT_EXPORT}[format]
    where = data.draw(st.sampled_from(paths(fixture)[1:]))
    mutated = replaced(fixture, where, new)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        if format == "claude-code":
            path.write_text("".join(dumps(record) + "\n" for record in mutated), encoding="utf-8")
        else:
            path.write_text(dumps(mutated), encoding="utf-8")
        for record in read_messages(path, format=format):  # type: ignore[arg-type]
            if isinstance(record, Message):
                assert isinstance(record.role, str) and record.role
                assert isinstance(record.text, str) and record.text
                assert all(isinstance(v, str | None) for v in (record.time, record.session, record.title))
            else:
                assert isinstance(record, Problem) and isinstance(record.message, str)


# --- Codex CLI ----------------------------------------------------------------------------------


def rollout(kind: str, at: str, payload: dict[str, Any]) -> str:
    return dumps({"timestamp": at, "type": kind, "payload": payload})


CODEX_SID = "0199a1b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b"
CODEX_LINES = [
    rollout(
        "session_meta", "2026-11-20T09:00:00.100Z", {"id": CODEX_SID, "cwd": "/home/ada/api", "cli_version": "0.60.0"}
    ),
    rollout(
        "response_item",
        "2026-11-20T09:00:00.200Z",
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex"}]},
    ),
    rollout(
        "response_item",
        "2026-11-20T09:00:00.300Z",
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "<environment_context>\n  <cwd>/home/ada/api</cwd>\n</environment_context>",
                }
            ],
        },
    ),
    rollout("turn_context", "2026-11-20T09:00:01.000Z", {"cwd": "/home/ada/api", "model": "gpt-5-codex"}),
    rollout(
        "response_item",
        "2026-11-20T09:00:01.000Z",
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "why is /health slow?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBO"},
            ],
        },
    ),
    rollout("event_msg", "2026-11-20T09:00:01.000Z", {"type": "user_message", "message": "why is /health slow?"}),
    rollout(
        "response_item",
        "2026-11-20T09:00:02.000Z",
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "**Checking the handler**"}],
            "encrypted_content": "gAAA",
        },
    ),
    rollout(
        "response_item",
        "2026-11-20T09:00:03.000Z",
        {"type": "function_call", "name": "shell", "arguments": '{"command":["rg","health"]}', "call_id": "call_1"},
    ),
    rollout(
        "response_item",
        "2026-11-20T09:00:04.000Z",
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": {"content": "app.py:12: def health():", "success": True},
        },
    ),
    "{broken",
    rollout(
        "response_item",
        "2026-11-20T09:00:05.000Z",
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "It queries the DB on every call."}],
        },
    ),
    rollout("compacted", "2026-11-20T09:30:00.000Z", {"message": "Summary: /health hit the DB."}),
    rollout("brand_new_type", "2026-11-20T09:30:01.000Z", {}),
]


def test_codex_rollout(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "2026" / "11" / "20" / f"rollout-2026-11-20T09-00-00-{CODEX_SID}.jsonl", CODEX_LINES)
    assert detect_format(path) == "codex"
    messages, problems = split(list(read_messages(path)))

    def m(role: str, text: str, at: str) -> Message:
        return Message(role=role, text=text, time=at, session=CODEX_SID)

    assert messages == [
        m("user", "why is /health slow?\n[image: image/png]", "2026-11-20T09:00:01Z"),
        m("assistant", "[thinking] **Checking the handler**", "2026-11-20T09:00:02Z"),
        m("assistant", '[tool_use shell] {"command":["rg","health"]}', "2026-11-20T09:00:03Z"),
        m("tool", "[tool_result shell] app.py:12: def health():", "2026-11-20T09:00:04Z"),
        m("assistant", "It queries the DB on every call.", "2026-11-20T09:00:05Z"),
        m("summary", "Summary: /health hit the DB.", "2026-11-20T09:30:00Z"),
    ]
    assert [p.line for p in problems] == [10, 13]
    assert "brand_new_type" in problems[1].message


def test_codex_rollout_of_2025_without_envelopes(tmp_path: Path) -> None:
    lines = [
        dumps({"id": CODEX_SID, "timestamp": "2025-05-01T10:00:00Z", "instructions": None}),
        dumps({"record_type": "state"}),
        dumps({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}),
    ]
    path = write_lines(tmp_path / "rollout-old.jsonl", lines)
    messages, problems = split(list(read_messages(path, "codex")))
    assert messages == [Message(role="user", text="hello", session=CODEX_SID)] and not problems


def test_content_passed_in_reads_like_the_file(tmp_path: Path) -> None:
    from optical_memory.importers import read_content

    path = write_lines(tmp_path / "r.jsonl", CODEX_LINES)
    assert list(read_content(path.read_text(encoding="utf-8"))) == list(read_messages(path))
    assert list(read_content(path.read_bytes(), "codex")) == list(read_messages(path, "codex"))
