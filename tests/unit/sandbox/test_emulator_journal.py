"""The emulator's SQLite journal: what it writes comes back at start-up, and older data directories open."""

from __future__ import annotations

import random
import sqlite3

import pytest

from dualbus.sandbox.servicebus import store
from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.entity import DEFERRED, StoredMessage
from dualbus.sandbox.servicebus.message import SentMessage, parse_message
from dualbus.sandbox.servicebus.server import EmulatorServer
from dualbus.sandbox.servicebus.store import SqliteJournal

# properties(message-id "m-1") then a data section holding b"hello": a minimal encoded bare message.
_BARE = b"\x00\x53\x73\xc0\x06\x01\xa1\x03m-1" + b"\x00\x53\x75\xa0\x05hello"
# The broker's clock at load time (ms): far past every enqueued_ms and expires_ms the tests write.
NOW_MS = 1_000_000


def _message(seq: int, **fields: object) -> StoredMessage:
    env = parse_message(_BARE)
    return StoredMessage(seq, env, enqueued_ms=1_000, **fields)  # type: ignore[arg-type]


def test_messages_sharing_a_sequence_number_across_subscriptions_are_kept_apart(tmp_path):
    journal = SqliteJournal(tmp_path)
    journal.insert("t/subscriptions/a", _message(7))
    journal.insert("t/subscriptions/b", _message(7))
    journal.insert("q", _message(8))
    journal.flush()
    journal.delete("t/subscriptions/a", 7)
    journal.flush()
    journal.close()

    loaded = SqliteJournal(tmp_path).load(NOW_MS)
    assert [(path, m.seq) for path, m in loaded.messages] == [("q", 8), ("t/subscriptions/b", 7)]
    assert loaded.messages[0][1].env.message_id == "m-1"
    assert loaded.messages[0][1].env.bare == _BARE


def test_updates_and_deletes_after_a_restart_reach_the_restored_rows(tmp_path):
    first = SqliteJournal(tmp_path)
    first.insert("q", _message(1))
    first.insert("q", _message(2))
    first.next_seq(3)
    first.close()

    second = SqliteJournal(tmp_path)
    restored = {m.seq: m for _, m in second.load(NOW_MS).messages}
    restored[1].state, restored[1].delivery_count = DEFERRED, 4
    second.update("q", restored[1])
    second.delete("q", 2)
    second.insert("q", _message(3))
    second.close()

    state = SqliteJournal(tmp_path).load(NOW_MS)
    assert [(m.seq, m.state, m.delivery_count) for _, m in state.messages] == [(1, DEFERRED, 4), (3, 0, 0)]
    assert state.next_seq == 4


def test_a_journal_written_before_rowid_ids_is_carried_over(tmp_path):
    db = sqlite3.connect(tmp_path / "servicebus.sqlite3")
    db.executescript(
        """
        CREATE TABLE messages (
            entity TEXT NOT NULL, seq INTEGER NOT NULL, state INTEGER NOT NULL, enqueued INTEGER NOT NULL,
            expires INTEGER, scheduled INTEGER, delivery_count INTEGER NOT NULL, durable INTEGER NOT NULL,
            priority INTEGER, ttl INTEGER, ann BLOB NOT NULL, ann_count INTEGER NOT NULL, bare BLOB NOT NULL,
            PRIMARY KEY (entity, seq)
        ) WITHOUT ROWID;
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta VALUES ('next_seq', 12);
        """
    )
    db.executemany(
        "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [("q", seq, 0, 1_000, None, None, 2, 1, None, None, b"", 0, _BARE) for seq in (10, 11)],
    )
    db.commit()
    db.close()

    journal = SqliteJournal(tmp_path)
    state = journal.load(NOW_MS)
    assert [(m.seq, m.delivery_count, m.env.durable) for _, m in state.messages] == [
        (10, 2, True),
        (11, 2, True),
    ]
    assert state.next_seq == 12
    journal.delete("q", 10)
    journal.close()
    assert [m.seq for _, m in SqliteJournal(tmp_path).load(NOW_MS).messages] == [11]


def test_an_envelope_round_trips_its_header_fields(tmp_path):
    journal = SqliteJournal(tmp_path)
    env = SentMessage(
        bare=_BARE, ann=b"\xa3\x01k\xa1\x01v", ann_count=1, durable=True, priority=5, ttl_ms=60_000
    )
    journal.insert("q", StoredMessage(1, env, enqueued_ms=5, expires_ms=60_005))
    journal.close()
    ((_, loaded),) = SqliteJournal(tmp_path).load(NOW_MS).messages
    assert (loaded.env.ann, loaded.env.ann_count, loaded.env.priority, loaded.env.ttl_ms) == (
        env.ann,
        1,
        5,
        60_000,
    )
    assert loaded.expires_ms == 60_005


def _rows(path) -> tuple[int, int]:
    db = sqlite3.connect(path / "servicebus.sqlite3")
    try:
        stored = db.execute("SELECT COUNT(*) FROM stored_messages").fetchone()[0]
        settled = db.execute("SELECT COUNT(*) FROM settled").fetchone()[0]
    finally:
        db.close()
    return stored, settled


def test_a_settled_message_is_gone_after_a_crash_even_before_its_row_is_removed(tmp_path):
    journal = SqliteJournal(tmp_path)
    for seq in (1, 2, 3):
        journal.insert("q", _message(seq))
    journal.flush()
    journal.delete("q", 2)
    journal.flush()
    journal._db.close()  # the process dies here: no idle pass, no close

    assert _rows(tmp_path) == (3, 1)
    assert [m.seq for _, m in SqliteJournal(tmp_path).load(NOW_MS).messages] == [1, 3]


def test_idle_removes_the_rows_of_settled_messages(tmp_path):
    journal = SqliteJournal(tmp_path)
    for seq in (1, 2, 3):
        journal.insert("q", _message(seq))
    journal.delete("q", 1)
    journal.delete("q", 3)
    journal.idle()
    journal._db.close()

    assert _rows(tmp_path) == (1, 0)


def test_idle_housekeeping_that_fails_is_logged_and_tried_again(tmp_path, caplog):
    journal = SqliteJournal(tmp_path)
    for seq in (1, 2):
        journal.insert("q", _message(seq))
    journal.delete("q", 1)
    journal.flush()
    journal._db.execute(
        "CREATE TRIGGER refuse BEFORE DELETE ON stored_messages BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    journal.idle()  # must not raise: the loop calls it between passes
    assert "could not remove settled messages" in caplog.text
    journal._db.execute("DROP TRIGGER refuse")
    journal.idle()
    journal._db.close()

    assert _rows(tmp_path) == (1, 0)


def test_a_flush_removes_settled_rows_once_enough_have_piled_up(tmp_path, monkeypatch):
    """A loop that is never idle still removes settled rows, inside a flush, every few thousand."""
    monkeypatch.setattr(store, "_COMPACT_AFTER", 2)
    journal = SqliteJournal(tmp_path)
    for seq in (1, 2, 3):
        journal.insert("q", _message(seq))
    journal.flush()
    journal.delete("q", 1)
    journal.flush()
    journal.delete("q", 2)
    journal.flush()
    journal._db.close()

    assert _rows(tmp_path) == (1, 0)


@pytest.mark.parametrize("seed", range(20))
def test_what_comes_back_after_a_crash_or_restart_is_what_was_flushed(tmp_path, monkeypatch, seed):
    """Random inserts, re-inserts, deletes and updates of a few (entity, seq) keys, with flushes, idle
    passes, bulk removals, crashes and clean restarts: a load returns exactly the last flushed state."""
    monkeypatch.setattr(store, "_COMPACT_AFTER", 3)
    rnd = random.Random(seed)
    journal = SqliteJournal(tmp_path)
    journal.load(NOW_MS)
    flushed: dict[tuple[str, int], int] = {}
    live: dict[tuple[str, int], int] = {}
    for _ in range(150):
        pick = rnd.random()
        key = (rnd.choice(("q", "t/subscriptions/a", "t/subscriptions/b")), rnd.randint(1, 5))
        if pick < 0.35:  # a send, a dead-letter move or a re-routed scheduled message: same key again
            live[key] = rnd.randint(0, 3)
            journal.insert(key[0], _message(key[1], state=live[key]))
        elif pick < 0.6:
            live.pop(key, None)
            journal.delete(*key)
        elif pick < 0.7:
            if key in live:
                live[key] = rnd.randint(0, 3)
                journal.update(key[0], _message(key[1], state=live[key]))
        elif pick < 0.92:
            if pick > 0.85:
                journal.idle()
            else:
                journal.flush()
            flushed = dict(live)
        else:
            if pick < 0.96:
                journal._db.close()  # killed: whatever was not flushed is lost
            else:
                journal.close()
                flushed = dict(live)
            journal = SqliteJournal(tmp_path)
            loaded = {(path, m.seq): m.state for path, m in journal.load(NOW_MS).messages}
            assert loaded == flushed
            live = dict(flushed)
    journal.close()
    assert {(path, m.seq): m.state for path, m in SqliteJournal(tmp_path).load(NOW_MS).messages} == live


def test_messages_of_an_entity_no_longer_configured_are_kept_and_reported(tmp_path, caplog):
    journal = SqliteJournal(tmp_path)
    journal.insert("gone", _message(1))
    journal.insert("kept", _message(2))
    journal.close()

    config = EmulatorConfig(
        namespaces=[NamespaceConfig(name="ns", queues=[QueueConfig(name="kept")], topics=[])]
    )
    server = EmulatorServer(config=config, data_dir=tmp_path)
    try:
        assert list(server.bus.entity("kept").messages) == [2]
        assert "1 stored messages belong to 'gone'" in caplog.text
    finally:
        server.stop()
        server.serve_forever()  # one pass: it sees the stop, then closes the journal and the socket

    assert [path for path, _ in SqliteJournal(tmp_path).load(NOW_MS).messages] == ["gone", "kept"]


def test_load_drops_the_duplicate_ids_whose_window_passed_by_the_broker_s_clock(tmp_path):
    """Duplicate-detection ids expire by the clock the broker is given, not by the wall clock."""
    journal = SqliteJournal(tmp_path)
    journal.dedup("q", "old", 500)
    journal.dedup("q", "young", 2_000)
    journal.flush()
    journal.close()
    state = SqliteJournal(tmp_path).load(1_000)
    assert [message_id for _, message_id, _ in state.dedup] == ["young"]
