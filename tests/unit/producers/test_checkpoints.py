"""The checkpoint store keeps progress durably and atomically."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dualbus.producers.checkpoints import (
    CheckpointError,
    CheckpointStore,
    CheckpointUnavailableError,
    DigestChange,
)
from dualbus.shared.errors import TransientError


def test_checkpoint_survives_reopening(tmp_path: Path) -> None:
    """A checkpoint written before close is read back by a new store on the same file."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put("dataverse.delta.customers", "42!2024")
        store.put("initial.fo.customers.usmf", {"after": ["usmf", "C-9"], "pages": 3})
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        assert store.get("dataverse.delta.customers") == "42!2024"
        assert store.get("initial.fo.customers.usmf") == {"after": ["usmf", "C-9"], "pages": 3}
        assert store.get("missing", "default") == "default"


def test_put_many_writes_checkpoints_and_index_together(tmp_path: Path) -> None:
    """Checkpoints and row-index changes land in one transaction, and None removes an index entry."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put_many({"a": 1}, index=[("accounts", "id-1", {"key": {"k": "1"}, "version": 5})])
        assert store.row_ref("accounts", "id-1") == {"key": {"k": "1"}, "version": 5}
        assert store.row_ids("accounts") == ["id-1"]
        store.put_many({"a": 2}, index=[("accounts", "id-1", None)])
        assert store.row_ref("accounts", "id-1") is None
        assert store.get("a") == 2


def test_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    """A value that cannot be encoded aborts the whole write: the earlier checkpoint stays as it was."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put("a", 1)
        with pytest.raises(TypeError):
            store.put_many({"a": 2, "b": object()})
        assert store.get("a") == 1
        assert store.get("b") is None


def test_delete_prefix_forgets_only_matching_names(tmp_path: Path) -> None:
    """Deleting by prefix removes a finished run's checkpoints and keeps the others."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put_many({"initial.fo.x": 1, "initial.fo.y": 2, "fo.watermark.x": "t"})
        store.delete_prefix("initial.fo.")
        assert store.names() == ["fo.watermark.x"]


def test_unopenable_store_raises_checkpoint_error(tmp_path: Path) -> None:
    """A path that cannot hold a database is reported as a CheckpointError."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointError):
        CheckpointStore(blocker / "sub" / "s.sqlite3")


def test_a_store_another_process_holds_is_unavailable_for_now(tmp_path: Path) -> None:
    """A write that waited out the busy timeout on another connection's transaction is a transient failure
    (the producer runs its round again), and the same write goes through once the other lets go."""
    path = tmp_path / "s.sqlite3"
    with CheckpointStore(path, busy_timeout=0.05) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(CheckpointUnavailableError) as failure:
            store.put("a", 1)
        assert isinstance(failure.value, TransientError)
        assert "locked" in str(failure.value)
        other.execute("ROLLBACK")
        other.close()
        store.put("a", 1)
        assert store.get("a") == 1


class _Failing:
    """A store's connection whose statements starting with ``word`` fail ``times`` times, as SQLite fails
    them when another process holds the file (SQLITE_BUSY); the rest go to the real connection."""

    def __init__(self, db: sqlite3.Connection, word: str, times: int = 1) -> None:
        self.db, self.word, self.times = db, word, times

    def execute(self, sql: str, *params: object) -> sqlite3.Cursor:
        if sql.startswith(self.word) and self.times:
            self.times -= 1
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise busy
        return self.db.execute(sql, *params)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_every_read_of_a_busy_store_is_unavailable_for_now(tmp_path: Path) -> None:
    """The row-id and checkpoint-name listings fail as the other reads do, not with sqlite3's own error,
    which escaped the producer's round as a traceback."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        real = store._db  # a busy file is made by failing the connection's statements
        store._db = _Failing(real, "SELECT", times=2)
        with pytest.raises(CheckpointUnavailableError):
            store.row_ids("accounts")
        with pytest.raises(CheckpointUnavailableError):
            store.names("initial.")
        assert store.row_ids("accounts") == []
        store._db = real


def test_a_commit_that_failed_leaves_the_store_usable(tmp_path: Path) -> None:
    """A COMMIT refused as busy rolls its transaction back: the retry writes, where every later write
    failed with "cannot start a transaction within a transaction"."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        real = store._db  # a busy file is made by failing the connection's statements
        store._db = _Failing(real, "COMMIT")
        with pytest.raises(CheckpointUnavailableError):
            store.put("a", 1)
        store.put("a", 2)
        store._db = real
        assert store.get("a") == 2


def test_a_file_that_is_no_database_is_no_passing_failure(tmp_path: Path) -> None:
    """A damaged file is not retried for ever: its failure stays a plain CheckpointError, which stops the
    producer with a line naming the file."""
    path = tmp_path / "s.sqlite3"
    path.write_bytes(b"this is not an SQLite database, only text long enough to look at" * 20)
    with pytest.raises(CheckpointError) as failure:
        CheckpointStore(path)
    assert not isinstance(failure.value, TransientError)
    assert str(path) in str(failure.value)


def test_digests_are_written_read_and_forgotten_with_the_checkpoints(tmp_path: Path) -> None:
    """Digest changes land with checkpoints in one transaction; None forgets a key."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put_many({"a": 1}, digests=[("customers", "k1", "d1", 5), ("customers", "k2", "d2", 5)])
        assert store.digests("customers", ["k1", "k2", "k3"]) == {"k1": "d1", "k2": "d2"}
        store.put_many({}, digests=[("customers", "k1", None, 0)])
        assert store.digests("customers", ["k1", "k2"]) == {"k2": "d2"}
        assert store.digests("vendors", ["k2"]) == {}


def test_delete_values_are_kept_beside_a_digest_and_forgotten_with_it(tmp_path: Path) -> None:
    """A key's delete values are stored with its digest; a key written without them has none."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        values = {"ContactPersonId": "CP-1"}
        store.put_many({}, digests=[DigestChange("m", "k1", "d1", 5, values), ("m", "k2", "d2", 5)])
        assert store.delete_data("m", ["k1", "k2", "k3"]) == {"k1": values}
        store.put_many({}, digests=[DigestChange("m", "k1", None, 0)])
        assert store.delete_data("m", ["k1"]) == {}


def test_a_file_from_before_delete_values_opens_with_its_digests(tmp_path: Path) -> None:
    """An older store file gains the delete values' column; its keys keep their digests and have no values."""
    path = tmp_path / "s.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE digests (scope TEXT, key TEXT, digest TEXT NOT NULL, seen INTEGER NOT NULL, "
            "PRIMARY KEY (scope, key))"
        )
        old.execute("INSERT INTO digests VALUES ('m', 'k1', 'd1', 5)")
    old.close()
    with CheckpointStore(path) as store:
        assert (store.digests("m", ["k1"]), store.delete_data("m", ["k1"])) == ({"k1": "d1"}, {})
        store.put_many({}, digests=[DigestChange("m", "k1", "d2", 6, {"x": 1})])
        assert store.delete_data("m", ["k1"]) == {"k1": {"x": 1}}
    with CheckpointStore(path) as again:
        assert again.unseen("m", 7, 10) == ["k1"]


def test_unseen_lists_the_keys_a_scan_did_not_mark(tmp_path: Path) -> None:
    """Keys last seen before a scan's generation are the candidates for deletes, a bounded step at a time."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        marks = [("m", f"k{n}", "d", n) for n in range(10)]
        store.put_many({}, digests=marks)
        assert store.unseen("m", 4, 100) == ["k0", "k1", "k2", "k3"]
        assert store.unseen("m", 4, 2) == ["k0", "k1"]


def test_many_digests_are_looked_up_beyond_sqlite_parameter_limits(tmp_path: Path) -> None:
    """A page of thousands of keys is looked up in one call."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put_many({}, digests=[("m", f"k{n}", f"d{n}", 1) for n in range(2500)])
        assert len(store.digests("m", [f"k{n}" for n in range(3000)])) == 2500


def test_reservations_only_move_up(tmp_path: Path) -> None:
    """A reservation starts above every earlier one, whatever value it asks for."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        assert store.reserve("clock", 100, 10) == 100
        assert store.reserve("clock", 50, 10) == 111
        assert store.reserve("clock", 500, 10) == 500
