"""A small durable store for producer progress: named checkpoints and the Dataverse row-id index.

One SQLite file under the state directory, in WAL mode, every write its own transaction: a process killed
at any instant leaves either the old or the new value, never half of one. Callers write a checkpoint only
after the changes it covers were published, so a restart re-publishes at most the last unconfirmed batch
(duplicate detection absorbs it) and never skips a change.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson

from shared.errors import DualbusError

__all__ = ["CheckpointError", "CheckpointStore", "RowRef"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    # Dataverse reports a deleted row by its id only: remember each id's natural key, company and version.
    (
        "CREATE TABLE IF NOT EXISTS row_index (entity TEXT, row_id TEXT, ref BLOB NOT NULL, "
        "PRIMARY KEY (entity, row_id))"
    ),
)

RowRef = dict[str, Any]


class CheckpointError(DualbusError):
    """The checkpoint store cannot be opened, read or written."""


class CheckpointStore:
    """Named JSON checkpoints and a row-id index, durable in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process kill (only a power cut may lose the last commits).
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise CheckpointError(f"cannot open the checkpoint store {path}: {exc}") from exc

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
        self, values: Mapping[str, Any], *, index: Iterable[tuple[str, str, RowRef | None]] = ()
    ) -> None:
        """Write checkpoints and row-index changes in one transaction (None in ``index`` removes a row)."""
        encoded = [(name, orjson.dumps(value)) for name, value in values.items()]
        upserts = [(e, i, orjson.dumps(ref)) for e, i, ref in index if ref is not None]
        removals = [(e, i) for e, i, ref in index if ref is None]
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO checkpoints (name, value) VALUES (?, ?)", encoded)
            db.executemany("INSERT OR REPLACE INTO row_index (entity, row_id, ref) VALUES (?, ?, ?)", upserts)
            db.executemany("DELETE FROM row_index WHERE entity = ? AND row_id = ?", removals)

    def delete_prefix(self, prefix: str) -> None:
        """Forget every checkpoint whose name starts with ``prefix`` (a finished or restarted run)."""
        with self._transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE substr(name, 1, ?) = ?", (len(prefix), prefix))

    def names(self, prefix: str = "") -> list[str]:
        """Checkpoint names starting with ``prefix``, sorted."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM checkpoints WHERE substr(name, 1, ?) = ? ORDER BY name",
                (len(prefix), prefix),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def row_ref(self, entity: str, row_id: str) -> RowRef | None:
        """What the index remembers of a row (natural key, company, last version), or None."""
        row = self._query("SELECT ref FROM row_index WHERE entity = ? AND row_id = ?", (entity, row_id))
        if row is None:
            return None
        ref: RowRef = orjson.loads(row[0])
        return ref

    def row_ids(self, entity: str) -> list[str]:
        """Every row id the index holds for ``entity``."""
        with self._lock:
            rows = self._db.execute("SELECT row_id FROM row_index WHERE entity = ?", (entity,)).fetchall()
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

    def _query(self, sql: str, params: tuple[str, ...]) -> tuple[Any, ...] | None:
        try:
            with self._lock:
                row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot read the checkpoint store {self.path}: {exc}") from exc
        return row

    def _transaction(self) -> _Transaction:
        return _Transaction(self)


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
            raise CheckpointError(f"cannot write the checkpoint store {self._store.path}: {exc}") from exc
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
            raise CheckpointError(
                f"cannot write the checkpoint store {self._store.path}: {failure}"
            ) from failure
        finally:
            self._store._lock.release()  # noqa: SLF001
        if isinstance(exc, sqlite3.Error):
            raise CheckpointError(f"cannot write the checkpoint store {self._store.path}: {exc}") from exc
