"""The F&O twin's rows in a SQLite file, so that a sandbox keeps its data across restarts.

Format 2 keeps each row with its RecId (``records``) and the change sequence and last RecId (``meta``). A file
of another format (format 1 kept ModifiedDateTime/ModifiedBy rows in ``rows``) is refused rather than read
half-right or wiped: the message says to delete it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from dualbus.sandbox.errors import SandboxConfigError

__all__ = ["FORMAT", "RowFile"]

FORMAT = "2"
_TABLES = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)",
    (
        "CREATE TABLE IF NOT EXISTS records"
        " (entity TEXT, key TEXT, rec_id INTEGER, data TEXT, PRIMARY KEY (entity, key))"
    ),
)

Record = tuple[str, tuple[str, ...], int, dict[str, Any]]


class RowFile:
    """Rows, RecIds and counters in one SQLite file; the caller commits or rolls back with its changes."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
        _check_format(self._db, path)
        for statement in _TABLES:
            self._db.execute(statement)
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('format', ?)", (FORMAT,))
        self._db.commit()

    def records(self) -> Iterator[Record]:
        """Every stored row: entity set, normalised key, RecId, field values."""
        for entity, key, rec_id, data in self._db.execute("SELECT entity, key, rec_id, data FROM records"):
            yield entity, tuple(orjson.loads(key)), int(rec_id), orjson.loads(data)

    def counter(self, name: str) -> int:
        """A stored counter (``sequence`` or ``rec_id``), 0 when never set."""
        found = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return int(found[0]) if found else 0

    def save(self, entity: str, key: tuple[str, ...], rec_id: int, row: dict[str, Any] | None) -> None:
        """Store a row (or delete it when ``row`` is None), uncommitted."""
        encoded = orjson.dumps(list(key)).decode()
        if row is None:
            self._db.execute("DELETE FROM records WHERE entity = ? AND key = ?", (entity, encoded))
            return
        self._db.execute(
            "INSERT OR REPLACE INTO records (entity, key, rec_id, data) VALUES (?, ?, ?, ?)",
            (entity, encoded, rec_id, orjson.dumps(row).decode()),
        )

    def set_counter(self, name: str, value: int) -> None:
        """Store a counter, uncommitted."""
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, str(value)))

    def commit(self) -> None:
        """Make what was saved durable."""
        self._db.commit()

    def rollback(self) -> None:
        """Forget what was saved since the last commit."""
        self._db.rollback()

    def close(self) -> None:
        """Close the file."""
        self._db.close()


def _check_format(db: sqlite3.Connection, path: Path) -> None:
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    found = None
    if "meta" in tables:
        found = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    if (found is None and tables) or (found is not None and found[0] != FORMAT):
        db.close()
        raise SandboxConfigError(
            f"{path} holds F&O twin data in an older format than {FORMAT}; delete the file to start afresh"
        )
