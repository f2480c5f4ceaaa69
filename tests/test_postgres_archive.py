"""The PostgreSQL archive itself: LMDB's txn/cursor semantics emulated exactly, migration both ways
byte-identical, the config and CLI that pick it, and errors that say what is wrong without a password."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import lmdb
import psycopg
import pytest

from optical_memory.archive import _DATABASES, Archive, ArchiveTxn
from optical_memory.config import load_config
from optical_memory.errors import ArchiveBusy, ArchiveError, ArchiveReadOnly, InvalidArgument
from optical_memory.memory import Memory
from optical_memory.migrate import digests, migrate
from optical_memory.postgres import connect, redact
from optical_memory.postgres.archive import PgArchive
from optical_memory.postgres.kv import PgDb, PgTxn
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
from optical_memory_mcp.cli import main

pytest_plugins = ["tests.pg"]

TIERS = (Tier("hot", 1.0), Tier("warm", 0.75, "webp", 90, after_pages=2))


# the key/value emulation against LMDB itself -------------------------------------------------------
def _walk(cursor, rng: random.Random, keys: list[bytes]) -> list[object]:  # type: ignore[no-untyped-def]
    """A random walk of cursor calls; what each returned, in order."""
    seen: list[object] = []
    for _ in range(40):
        op = rng.choice(["set_range", "set_key", "next", "prev", "first", "last", "item", "put", "next_nodup"])
        if op == "put":  # stores and stands on the new row (search's index appends this way)
            key = rng.choice(keys)
            seen.append((op, cursor.put(key, b"c" + key), bytes(cursor.key())))
        elif op in ("set_range", "set_key"):
            probe = rng.choice([*keys, bytes([rng.randrange(256)]), b"\x00", b"\xff\xff"])
            seen.append((op, getattr(cursor, op)(probe)))
        elif op == "item":
            seen.append((op, bytes(cursor.key()), bytes(cursor.value())))
        else:
            seen.append((op, getattr(cursor, op)()))
    return seen


@pytest.mark.parametrize("seed", range(6))
def test_cursor_moves_match_lmdb_through_writes_in_the_same_transaction(pg_url: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    env = lmdb.open(str(tmp_path / "lmdb"), max_dbs=4, map_size=1 << 24)
    ldb = env.open_db(b"t")
    archive = PgArchive(pg_url)  # makes the tables; om_order serves as a plain key/value table here
    pdb = PgDb("order")
    lengths = [1, 2, 3] if seed % 2 else [2]
    keys = sorted({bytes(rng.randrange(4) * 60 for _ in range(n)) for n in lengths for _ in range(40)})
    results: dict[str, list[object]] = {}
    for name in ("lmdb", "pg"):
        walk_rng, log = random.Random(seed), []
        with archive._connection() as conn, env.begin(write=True) as ltxn:
            conn.execute("BEGIN")
            txn = ltxn if name == "lmdb" else PgTxn(conn, write=True)
            db = ldb if name == "lmdb" else pdb
            cursor = txn.cursor(db=db)
            for round_ in range(6):  # writes between walks: cursors must see them
                deletes = round_ % 2  # LMDB leaves a cursor whose row was deleted where its page layout puts it
                for key in walk_rng.sample(keys, k=min(len(keys), 12)):
                    if walk_rng.random() < 0.7 or not deletes:
                        log.append(("put", txn.put(key, b"v%d" % round_ + key, db=db)))
                    else:
                        log.append(("delete", txn.delete(key, db=db)))
                if deletes:  # so after deletes the walk starts from a new cursor, as the archive's modules do
                    cursor = txn.cursor(db=db)
                log += _walk(cursor, walk_rng, keys)
                log.append(list(map(lambda kv: (bytes(kv[0]), bytes(kv[1])), txn.cursor(db=db))))
                log.append(txn.stat(db)["entries"])
            conn.execute("ROLLBACK")
            if name == "lmdb":
                ltxn.abort()
        results[name] = log
    assert results["pg"] == results["lmdb"]
    archive.close()
    env.close()


def test_a_read_transaction_refuses_writes(pg_url: str) -> None:
    archive = PgArchive(pg_url)
    with pytest.raises(ArchiveReadOnly, match="read transaction"):
        archive.read(lambda tx: tx.put_image("p1", b"x"))
    archive.close()


def test_dupsort_postings_iterate_as_lmdb_does(pg_url: str) -> None:
    archive = PgArchive(pg_url)

    def fill_and_walk(tx: ArchiveTxn) -> list[object]:
        db = tx.db("postings")
        for key, value in [(b"b", b"2"), (b"a", b"9"), (b"b", b"1"), (b"a", b"3"), (b"c", b"0"), (b"b", b"1")]:
            tx.txn.put(key, value, db=db)
        with tx.txn.cursor(db=db) as cursor:
            keys = list(cursor.iternext_nodup(keys=True, values=False))
            dups = []
            for key in keys:
                cursor.set_key(key)
                dups.append(list(cursor.iternext_dup()))
        return [keys, dups, tx.txn.stat(db)["entries"]]

    assert archive.write(fill_and_walk) == [[b"a", b"b", b"c"], [[b"3", b"9"], [b"1", b"2"], [b"0"]], 5]
    archive.close()


# migration ----------------------------------------------------------------------------------------------
def _fill(memory: Memory) -> list[str]:
    texts = []
    for n in range(12):
        text = "\n".join(f"entry {n} line {i} token{n}x{i}" for i in range(9))
        memory.remember(text, session=f"s{n % 3}", role="user", title=f"t{n}")
        texts.append(text)
    memory.forget(page_id="p2")
    return texts


def test_migrate_to_postgres_and_back_is_byte_identical(pg_url: str, tmp_path: Path, config_file: Path) -> None:
    lmdb_config = replace(load_config(config_file, archive=tmp_path / "a", environ={}), tiers=TIERS)
    source = Memory(lmdb_config, reader=TemplateReader())
    _fill(source)
    assert "warm" in {p.tier for p in source.list_pages(limit=200).pages}
    found = source.search("token7x3").hits
    assert found  # found again on PostgreSQL only if the archive key (and so the term hashes) came along
    source.close()

    assert main(["migrate", "--from-archive", str(tmp_path / "a"), "--to-url", pg_url]) == 0
    pg_config = load_config(config_file, environ={"OPTICAL_MEMORY_ARCHIVE_URL": pg_url})
    pg = Memory(replace(pg_config, tiers=TIERS), reader=TemplateReader())
    assert pg.search("token7x3").hits == found  # the term hashes are keyed by the copied archive key
    assert pg.archive.check() == []
    pg.close()

    report = migrate(from_url=pg_url, to_archive=str(tmp_path / "b"))
    assert report["verified"] and report["copied"]["images"] > 0
    first, back = Archive(tmp_path / "a"), Archive(tmp_path / "b")
    assert digests(first) == digests(back)  # every key and value of every sub-database
    assert set(digests(first)) == set(_DATABASES)
    first.close()
    back.close()


def test_migrate_refuses_a_target_that_holds_an_archive(pg_url: str, tmp_path: Path) -> None:
    target = Memory(load_config(environ={"OPTICAL_MEMORY_ARCHIVE_URL": pg_url}), reader=TemplateReader())
    target.remember("already here")
    target.close()
    Archive(tmp_path / "a").close()
    with pytest.raises(InvalidArgument, match="not empty"):
        migrate(from_archive=str(tmp_path / "a"), to_url=pg_url)
    with pytest.raises(InvalidArgument, match="--from-archive PATH or --from-url"):
        migrate(from_archive=str(tmp_path / "a"), from_url=pg_url, to_archive=str(tmp_path / "b"))


# picking the backend ------------------------------------------------------------------------------
def test_the_url_comes_from_the_environment_or_the_file_and_a_folder_given_wins(tmp_path: Path) -> None:
    url = "postgresql://u@db.example/om"
    assert load_config(environ={"OPTICAL_MEMORY_ARCHIVE_URL": url}).archive.url == url
    file = tmp_path / "c.toml"
    file.write_text(f'[archive]\nurl = "{url}"\n', encoding="utf-8")
    assert load_config(file, environ={}).archive.url == url
    assert load_config(file, archive=tmp_path / "x", environ={}).archive.url is None  # --archive PATH
    assert load_config(file, environ={"OPTICAL_MEMORY_ARCHIVE": str(tmp_path)}).archive.url is None
    file.write_text('[archive]\nurl = "mysql://u:secret@h/db"\n', encoding="utf-8")
    with pytest.raises(InvalidArgument, match="postgresql://") as info:
        load_config(file, environ={})
    assert "secret" not in str(info.value)


def test_cli_archive_url_serves_the_tools_from_postgres(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPTICAL_MEMORY_READER", "template")
    monkeypatch.setenv("OPTICAL_MEMORY_ARCHIVE_URL", "postgresql://unused")  # main() sets it: restored after
    assert main(["--archive-url", pg_url, "remember", "hello from the cli", "--session", "cli"]) == 0
    capsys.readouterr()
    assert main(["sessions", "--archive-url", pg_url]) == 0
    assert json.loads(capsys.readouterr().out)["sessions"][0]["name"] == "cli"
    assert main(["--archive", "/tmp/x", "--archive-url", pg_url, "sessions"]) == 2
    assert "not both" in capsys.readouterr().err


# errors, said without the password ----------------------------------------------------------------
def test_urls_are_shown_without_their_password() -> None:
    assert (
        redact("postgresql://me:s3cret@db:5432/om?sslmode=require") == "postgresql://me:***@db:5432/om?sslmode=require"
    )
    assert "s3cret" not in redact("postgresql://db/om?user=me&password=s3cret")


def test_an_unreachable_server_is_said_so_without_the_password(postgres_server: str) -> None:
    port = int(postgres_server.rsplit(":", 1)[1].split("/")[0]) + 1  # nothing listens there
    with pytest.raises(ArchiveError, match="cannot connect") as info:
        connect(f"postgresql://me:hunter2@127.0.0.1:{port}/om", busy_timeout_s=1)
    assert "hunter2" not in str(info.value) and "me:***@" in str(info.value)


def test_a_missing_schema_and_a_newer_layout_are_refused_clearly(postgres_server: str, pg_url: str) -> None:
    with pytest.raises(ArchiveError, match="CREATE SCHEMA"):
        connect(f"{postgres_server}?options=-csearch_path%3Dnowhere")
    PgArchive(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE om_schema SET version = 99")
    with pytest.raises(ArchiveError, match="layout 99"):
        PgArchive(pg_url)


def test_a_writer_waits_its_turn_then_gives_up_with_archive_busy(pg_url: str) -> None:
    archive, other = PgArchive(pg_url), PgArchive(pg_url, busy_timeout_s=0.5)
    holding, release = threading.Event(), threading.Event()

    def hold(tx: ArchiveTxn) -> None:
        holding.set()
        release.wait(30)

    thread = threading.Thread(target=archive.write, args=(hold,))
    thread.start()
    assert holding.wait(30)
    try:
        with pytest.raises(ArchiveBusy, match="another writer"):
            other.write(lambda tx: tx.next_page_id())
        assert other.read(lambda tx: tx.page("p1")) is None  # readers never wait for a writer
    finally:
        release.set()
        thread.join(30)
    assert other.write(lambda tx: tx.next_page_id()) == ("p1", 1)
    archive.close()
    other.close()


def test_separate_schemas_are_separate_archives(named_schema_url: Callable[[str], str]) -> None:
    a, b = PgArchive(named_schema_url("team_a")), PgArchive(named_schema_url("team_b"))
    a.write(lambda tx: tx.next_page_id())
    assert b.write(lambda tx: tx.next_page_id()) == ("p1", 1)
    assert a.read(lambda tx: tx.archive_key()) != b.read(lambda tx: tx.archive_key())
    a.close()
    b.close()


def test_missing_postgres_binaries_fail_with_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI installs them; a machine without them gets told how, never a silent skip."""
    from optical_memory.postgres import local_server as pg

    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(pg.shutil, "which", lambda name: None)
    with pytest.raises(pg.ServerMissing, match="apt-get install -y postgresql"):
        pg._bin_dir()


async def test_serve_with_archive_url_serves_the_tools_from_postgres(pg_url: str, tmp_path: Path) -> None:
    import sys

    from mcp import Client, StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "optical_memory_mcp", "serve", "--archive-url", pg_url],
        cwd=tmp_path,
        env={**env, "OPTICAL_MEMORY_READER": "template"},
    )
    async with Client(params, read_timeout_seconds=60) as client:
        remembered = await client.call_tool("remember", {"text": "served from postgres", "session": "mcp"})
        assert not remembered.is_error
        listing = await client.call_tool("list_pages", {"limit": 5})
        assert listing.structured_content is not None
        assert [p["session"] for p in listing.structured_content["pages"]] == ["mcp"]
    memory = Memory(load_config(environ={"OPTICAL_MEMORY_ARCHIVE_URL": pg_url}), reader=TemplateReader())
    assert [line.text for line in memory.read_lines("p1").lines] == ["served from postgres"]
    memory.close()


def test_a_role_that_may_only_read_and_write_rows_uses_an_existing_archive(pg_url: str) -> None:
    """The tables are made once by a role that may create them; servers need no more than row rights."""
    PgArchive(pg_url).close()
    schema = pg_url.rsplit("%3D", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS om_app")
        conn.execute("CREATE ROLE om_app LOGIN")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO om_app')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO om_app')
    app_url = pg_url.replace("om_test@", "om_app@")
    memory = Memory(load_config(environ={"OPTICAL_MEMORY_ARCHIVE_URL": app_url}), reader=TemplateReader())
    memory.remember("written by a role without CREATE", session="app")
    assert [line.text for line in memory.read_lines("p1").lines] == ["written by a role without CREATE"]
    assert memory.forget(session="app").sessions_removed == ["app"]
    assert memory.archive.erase_free_space()["vacuumed_tables"] == 0  # VACUUM is the owner's: skipped, no error
    memory.close()
