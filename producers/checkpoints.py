"""A small durable store for producer progress: checkpoints, a row-id index, digests and clock marks.

One SQLite file under the state directory, in WAL mode, every write its own transaction: a process killed
at any instant leaves either the old or the new value, never half of one. Callers write a checkpoint only
after the changes it covers were published, so a restart re-publishes at most the last unconfirmed batch
and never skips a change.

- ``checkpoints``: named JSON values (delta tokens, initial-sync progress).
- ``row_index``: what a source row id stands for, for deletes that carry only the id (Dataverse's deleted
  entities, F&O data events whose Target holds only the virtual-entity id).
- ``digests``: per map and key, a digest of the state last published, the scan that last saw the row and
  the values a delete of it must carry (``SourceTable.delete_fields``), so that the F&O scan publishes only
  what changed, tells which rows are gone, and can name them on the other side.
- ``marks``: integer high-water marks raised atomically (the version clock's reservations), safe to share
  between processes using one file.
- ``inbox``: source events taken and not yet published, in arrival order (``producers.fo_inbox``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

import orjson

from dualbus.shared.errors import DualbusError, TransientError

__all__ = ["CheckpointError", "CheckpointStore", "CheckpointUnavailableError", "DigestChange", "RowRef"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    # Some deletes name a row by its id only: remember what the id stands for (Dataverse: the natural key,
    # version and delete values per map; F&O: the fields that find the row again).
    (
        "CREATE TABLE IF NOT EXISTS row_index (entity TEXT, row_id TEXT, ref BLOB NOT NULL, "
        "PRIMARY KEY (entity, row_id))"
    ),
    (
        "CREATE TABLE IF NOT EXISTS digests (scope TEXT, key TEXT, digest TEXT NOT NULL, "
        "seen INTEGER NOT NULL, delete_data BLOB, PRIMARY KEY (scope, key))"
    ),
    # A scan's end asks for the keys of one map it did not see: without this it would read the whole table.
    "CREATE INDEX IF NOT EXISTS digests_seen ON digests (scope, seen)",
    "CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL)",
)
_PUT_DIGEST = "INSERT OR REPLACE INTO digests (scope, key, digest, seen, delete_data) VALUES (?, ?, ?, ?, ?)"
# SQLite's default limit on bound parameters is 999 in older builds: key look-ups go in chunks below it.
_CHUNK = 500

RowRef = dict[str, Any]


class DigestChange(NamedTuple):
    """A digest of what was published for one key of one map (None forgets the key), and its delete values."""

    scope: str
    key: str
    digest: str | None
    seen: int
    delete_data: RowRef | None = None


class CheckpointError(DualbusError):
    """The checkpoint store cannot be opened, read or written."""


class CheckpointUnavailableError(CheckpointError, TransientError):
    """The checkpoint store failed for now: another process held its lock past the busy timeout, or the disk
    was full. The producer runs the round again after a backoff (a round checkpoints only after it
    published, so what it published is published again: the Dataverse producer under the same event ids,
    the F&O producer under new versions, which the consumers find unchanged); a store that cannot work at
    all (corrupt, read-only, not a database, an I/O error) stays a plain CheckpointError and stops the
    producer."""


# SQLite's primary result codes of a failure that passes (https://www.sqlite.org/rescode.html): SQLITE_BUSY,
# SQLITE_LOCKED, SQLITE_FULL. An extended code keeps its primary code in its low byte. Not SQLITE_IOERR: its
# extended codes mix a passing hiccup with a file system that cannot hold the store (SQLITE_IOERR_CORRUPTFS,
# SQLITE_IOERR_SHMMAP on a share without shared memory), which must stop the producer with a line naming it.
_PASSING = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL})


def _failure(doing: str, path: Path, exc: Exception) -> CheckpointError:
    """The store's error for ``exc``, raised while it tried to ``doing`` (open, read, write)."""
    # Set on the errors SQLite itself raised only (not on sqlite3's own, a closed connection's, say).
    code = getattr(exc, "sqlite_errorcode", None)
    passing = isinstance(code, int) and code & 0xFF in _PASSING
    kind = CheckpointUnavailableError if passing else CheckpointError
    return kind(f"cannot {doing} the checkpoint store {path}: {exc}")


class CheckpointStore:
    """Named JSON checkpoints and a row-id index, durable in one SQLite file."""

    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        """Open (or create) the store at ``path``; a write waits up to ``busy_timeout`` seconds for another
        process's transaction on the file (the webhook's, another producer's) before it fails."""
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process kill (only a power cut may lose the last commits).
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
            _add_delete_data(self._db)
        except (OSError, sqlite3.Error) as exc:
            raise _failure("open", path, exc) from exc

    @classmethod
    def in_state_dir(cls, state_dir: Path, name: str) -> CheckpointStore:
        """The store of one producer (``name``, e.g. ``fo`` or ``dataverse``) under the state directory."""
        return cls(state_dir / f"producer-{name}.sqlite3")

    def get(self, name: str, default: Any = None) -> Any:  # noqa: ANN401 - a checkpoint is any JSON value
        """The checkpoint called ``name``, or ``default`` when none was written."""
        row = self._query("SELECT value FROM checkpoints WHERE name = ?", (name,))
        return orjson.loads(row[0]) if row else default

    def put(self, name: str, value: Any) -> None:  # noqa: ANN401 - a checkpoint is any JSON value
        """Write one checkpoint durably."""
        self.put_many({name: value})

    def put_many(
        self,
        values: Mapping[str, Any],
        *,
        index: Iterable[tuple[str, str, RowRef | None]] = (),
        digests: Iterable[DigestChange] = (),
    ) -> None:
        """Write checkpoints, row-index and digest changes in one transaction (None removes an entry).

        The last change given for an entry stands: a row whose key changed is removed (its delete) and
        added again (its new key) in one step, and it must stay indexed.
        """
        encoded = [(name, orjson.dumps(value)) for name, value in values.items()]
        last_refs = {(entity, row_id): ref for entity, row_id, ref in index}
        upserts = [(e, i, orjson.dumps(ref)) for (e, i), ref in last_refs.items() if ref is not None]
        removals = [(e, i) for (e, i), ref in last_refs.items() if ref is None]
        given = (DigestChange(*change) for change in digests)
        changed = list({(change.scope, change.key): change for change in given}.values())
        kept = [_digest_row(c) for c in changed if c.digest is not None]
        forgotten = [(c.scope, c.key) for c in changed if c.digest is None]
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO checkpoints (name, value) VALUES (?, ?)", encoded)
            db.executemany("INSERT OR REPLACE INTO row_index (entity, row_id, ref) VALUES (?, ?, ?)", upserts)
            db.executemany("DELETE FROM row_index WHERE entity = ? AND row_id = ?", removals)
            db.executemany(_PUT_DIGEST, kept)
            db.executemany("DELETE FROM digests WHERE scope = ? AND key = ?", forgotten)

    def digests(self, scope: str, keys: Iterable[str]) -> dict[str, str]:
        """The stored digest of each of ``keys`` that has one."""
        return {key: str(digest) for key, digest in self._by_key("digest", scope, keys).items()}

    def delete_data(self, scope: str, keys: Iterable[str]) -> dict[str, RowRef]:
        """The stored delete values of each of ``keys`` that has them (none for keys stored before them)."""
        found = self._by_key("delete_data", scope, keys)
        return {key: orjson.loads(blob) for key, blob in found.items() if blob is not None}

    def unseen(self, scope: str, before: int, limit: int) -> list[str]:
        """Up to ``limit`` keys of ``scope`` last seen before ``before`` (a scan's generation)."""
        sql = "SELECT key FROM digests WHERE scope = ? AND seen < ? ORDER BY key LIMIT ?"
        return [str(row[0]) for row in self._all(sql, (scope, before, limit))]

    def reserve(self, name: str, at_least: int, span: int) -> int:
        """Atomically reserve ``span`` more values above the mark ``name``; returns the first one.

        The first value is at least ``at_least`` and above every value reserved before, by any process
        sharing the file; the mark moves to the last value reserved.
        """
        with self._transaction() as db:
            row = db.execute("SELECT value FROM marks WHERE name = ?", (name,)).fetchone()
            first = max(at_least, int(row[0]) + 1 if row else at_least)
            db.execute("INSERT OR REPLACE INTO marks (name, value) VALUES (?, ?)", (name, first + span))
        return first

    def delete_prefix(self, prefix: str) -> None:
        """Forget every checkpoint whose name starts with ``prefix`` (a finished or restarted run)."""
        with self._transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE substr(name, 1, ?) = ?", (len(prefix), prefix))

    def names(self, prefix: str = "") -> list[str]:
        """Checkpoint names starting with ``prefix``, sorted."""
        rows = self._all(
            "SELECT name FROM checkpoints WHERE substr(name, 1, ?) = ? ORDER BY name", (len(prefix), prefix)
        )
        return [str(row[0]) for row in rows]

    def add_to_inbox(self, body: bytes) -> None:
        """Keep one event durably, after every event kept before it."""
        with self._transaction() as db:
            db.execute("INSERT INTO inbox (body) VALUES (?)", (body,))

    def inbox(self, limit: int) -> list[tuple[int, bytes]]:
        """The oldest ``limit`` events kept, as (sequence, body), oldest first."""
        rows = self._all("SELECT seq, body FROM inbox ORDER BY seq LIMIT ?", (limit,))
        return [(int(seq), bytes(body)) for seq, body in rows]

    def remove_from_inbox(self, up_to: int) -> None:
        """Forget the events kept up to sequence ``up_to`` (they are published)."""
        with self._transaction() as db:
            db.execute("DELETE FROM inbox WHERE seq <= ?", (up_to,))

    def row_ref(self, entity: str, row_id: str) -> RowRef | None:
        """What the index remembers of a row (natural key, last version, delete values), or None."""
        row = self._query("SELECT ref FROM row_index WHERE entity = ? AND row_id = ?", (entity, row_id))
        if row is None:
            return None
        ref: RowRef = orjson.loads(row[0])
        return ref

    def row_ids(self, entity: str) -> list[str]:
        """Every row id the index holds for ``entity``."""
        rows = self._all("SELECT row_id FROM row_index WHERE entity = ?", (entity,))
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _by_key(self, column: str, scope: str, keys: Iterable[str]) -> dict[str, Any]:
        wanted, found = list(dict.fromkeys(keys)), {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            # Only this module's column names and ?s are formatted into the statement.
            sql = f"SELECT key, {column} FROM digests WHERE scope = ? AND key IN ({marks})"  # noqa: S608
            found.update({str(k): value for k, value in self._all(sql, (scope, *chunk))})
        return found

    def _all(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return list(self._db.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise _failure("read", self.path, exc) from exc

    def _query(self, sql: str, params: tuple[str, ...]) -> tuple[Any, ...] | None:
        try:
            with self._lock:
                row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _failure("read", self.path, exc) from exc
        return row

    def _transaction(self) -> _Transaction:
        return _Transaction(self)


def _digest_row(change: DigestChange) -> tuple[object, ...]:
    values = None if change.delete_data is None else orjson.dumps(change.delete_data)
    return (change.scope, change.key, change.digest, change.seen, values)


def _add_delete_data(db: sqlite3.Connection) -> None:
    """Give a file written before deletes carried values their column; its keys read as having none."""
    columns = {str(row[1]) for row in db.execute("PRAGMA table_info(digests)")}
    if "delete_data" in columns:
        return
    try:
        db.execute("ALTER TABLE digests ADD COLUMN delete_data BLOB")
    except sqlite3.OperationalError as exc:
        # Another process sharing the file added it first.
        if "duplicate column" not in str(exc):
            raise


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT under the store's lock; any failure rolls back and becomes CheckpointError."""

    def __init__(self, store: CheckpointStore) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        self._store._lock.acquire()  # noqa: SLF001 - the transaction is part of the store
        try:
            self._store._db.execute("BEGIN IMMEDIATE")  # noqa: SLF001
        except sqlite3.Error as exc:
            self._store._lock.release()  # noqa: SLF001
            raise _failure("write", self._store.path, exc) from exc
        return self._store._db  # noqa: SLF001

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        db = self._store._db  # noqa: SLF001
        try:
            if exc is None:
                db.execute("COMMIT")
            else:
                db.execute("ROLLBACK")
        except sqlite3.Error as failure:
            # A COMMIT that failed (busy) leaves its transaction open, and every later BEGIN would fail
            # ("cannot start a transaction within a transaction"): the retry must find the store usable.
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise _failure("write", self._store.path, failure) from failure
        finally:
            self._store._lock.release()  # noqa: SLF001
        if isinstance(exc, sqlite3.Error):
            raise _failure("write", self._store.path, exc) from exc
