"""The twin's rows, alternate-key indexes, versions and change log, in memory and optionally in SQLite.

Memory is the working copy (reads never touch the disk); with a database path every committed unit of work
is written through in one SQLite transaction, and a restart loads it all back. A unit of work keeps an undo
log, so a failing ``$batch`` change set is rolled back entirely.

The change log is the rows' own ``versionnumber`` (one counter for all tables, as SQL's rowversion) plus a
tombstone per deleted row, kept for ``change_retention_seconds`` (Dataverse's default is 7 days).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dualbus.d365 import DATAVERSE_VERSION_COLUMN, DvTable
from dualbus.sandbox.dataverse.errors import duplicate_record
from dualbus.sandbox.dataverse.id_order import IdOrder
from dualbus.sandbox.dataverse.tables import stored_key
from dualbus.sandbox.write_log import WriteLog

__all__ = ["Row", "Store", "UnitOfWork"]

Row = dict[str, Any]
_SEVEN_DAYS = 7 * 24 * 3600.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rows (entity_set TEXT, id TEXT, data BLOB, PRIMARY KEY (entity_set, id))",
    (
        "CREATE TABLE IF NOT EXISTS tombstones (entity_set TEXT, id TEXT, version INTEGER, deleted_at REAL, "
        "PRIMARY KEY (entity_set, id))"
    ),
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER)",
)


@dataclass(slots=True)
class _Table:
    definition: DvTable
    rows: dict[str, Row] = field(default_factory=dict)
    # Stored key columns (one tuple per alternate key) -> key values -> the id of the row holding them.
    key_index: dict[tuple[str, ...], dict[tuple[Any, ...], str]] = field(default_factory=dict)
    tombstones: dict[str, tuple[int, float]] = field(default_factory=dict)
    # Changes at or below this version may have been forgotten: older delta tokens are expired.
    forgotten_below: int = 0
    # The row ids in order, kept in order as rows come and go: a page is read without sorting the table,
    # and a create costs the same in a table of any size.
    order: IdOrder = field(default_factory=IdOrder)

    def __post_init__(self) -> None:
        for key in self.definition.alternate_keys:
            self.key_index[stored_key(self.definition, key)] = {}

    def keys_of(self, row: Row) -> list[tuple[tuple[str, ...], tuple[Any, ...]]]:
        """Each alternate key the row has complete values for: (its stored columns, its values)."""
        found = []
        for columns in self.key_index:
            values = tuple(row.get(column) for column in columns)
            if all(value is not None for value in values):
                # Alternate keys match without regard to case, as SQL Server's default collation does.
                found.append((columns, tuple(v.casefold() if isinstance(v, str) else v for v in values)))
        return found

    def index(self, row: Row, row_id: str) -> None:
        for columns, values in self.keys_of(row):
            self.key_index[columns][values] = row_id

    def unindex(self, row: Row) -> None:
        for columns, values in self.keys_of(row):
            self.key_index[columns].pop(values, None)

    def holders(self, row: Row) -> set[str]:
        """The ids of the rows that already hold one of ``row``'s alternate-key values."""
        held = (self.key_index[columns].get(values) for columns, values in self.keys_of(row))
        return {row_id for row_id in held if row_id is not None}


@dataclass(slots=True)
class UnitOfWork:
    """The rows touched by one request or change set: their state before, for rollback and write-through."""

    undo: dict[tuple[str, str], tuple[Row | None, tuple[int, float] | None]] = field(default_factory=dict)
    # The caller's user id, which the write log names (a delete leaves no _modifiedby_value to read).
    writer: str = ""


class Store:
    """All tables of one twin; every mutation goes through a unit of work from ``transaction()``."""

    def __init__(
        self,
        tables: Mapping[str, DvTable],
        *,
        database: Path | None = None,
        change_retention_seconds: float = _SEVEN_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tables = {name: _Table(definition) for name, definition in tables.items()}
        self._retention = change_retention_seconds
        self._clock = clock
        self.version = 0
        self.writes = WriteLog()
        self._db: sqlite3.Connection | None = None
        if database is not None:
            self._open(database)

    # -- reads -------------------------------------------------------------------------------------------

    def get(self, entity_set: str, row_id: str) -> Row | None:
        """The row with that primary id, or None."""
        return self._tables[entity_set].rows.get(row_id)

    def find_id(self, entity_set: str, key: Mapping[str, Any]) -> str | None:
        """The id of the row whose alternate-key columns hold ``key`` (stored column -> value), or None."""
        table = self._tables[entity_set]
        for columns, values in table.keys_of(dict(key)):
            if set(columns) == set(key):
                return table.key_index[columns].get(values)
        return None

    def rows(self, entity_set: str) -> list[Row]:
        """Every row of a table, in primary-id order (a stable order for paging)."""
        table = self._tables[entity_set]
        return [table.rows[row_id] for row_id in table.order]

    def count(self, entity_set: str) -> int:
        """How many rows a table holds (without reading them)."""
        return len(self._tables[entity_set].rows)

    def rows_between(self, entity_set: str, start: int, stop: int) -> list[Row]:
        """The rows at positions ``start`` to ``stop`` (excluded) of ``rows(entity_set)``, read alone."""
        table = self._tables[entity_set]
        return [table.rows[row_id] for row_id in table.order.between(start, stop)]

    def rows_after(self, entity_set: str, last: str | None, count: int) -> list[tuple[str, Row]]:
        """Up to ``count`` (id, row) pairs of the rows whose ids are above ``last``, in primary-id order."""
        table = self._tables[entity_set]
        return [(row_id, table.rows[row_id]) for row_id in table.order.after(last, count)]

    def changes_between(
        self, entity_set: str, after: int, upto: int
    ) -> tuple[list[Row], list[tuple[int, str]]]:
        """Rows whose newest state has a version in (``after``, ``upto``], and the (version, id) of rows
        deleted in it, each in version order."""
        table = self._tables[entity_set]
        self._forget_old_tombstones(table)
        changed = sorted((r for r in table.rows.values() if after < r["versionnumber"] <= upto), key=_version)
        deleted = sorted((v, i) for i, (v, _) in table.tombstones.items() if after < v <= upto)
        return changed, deleted

    def token_is_valid(self, entity_set: str, version: int, issued_at: float) -> bool:
        """False when the token was issued longer ago than the retention, when changes after ``version`` may
        have been forgotten, or when the version was never issued.

        "Changes are returned if the last token is within a default value of seven days"
        (https://github.com/MicrosoftDocs/powerapps-docs/blob/0494d1bb431955b8452296398559bab8f9526bd4/
        powerapps-docs/developer/data-platform/use-change-tracking-synchronize-data-external-systems.md):
        an old token is expired whether or not anything was deleted since.
        """
        table = self._tables[entity_set]
        self._forget_old_tombstones(table)
        recent = issued_at >= self._clock() - self._retention
        return recent and table.forgotten_below <= version <= self.version

    # -- writes ------------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """A unit of work: committed (and written through) on success, undone entirely on any exception."""
        work = UnitOfWork()
        try:
            yield work
        except BaseException:
            self._rollback(work)
            raise
        self._commit(work)

    def put(self, work: UnitOfWork, entity_set: str, row: Row) -> Row:
        """Insert or replace a row under a new version; refuse a second row with the same alternate key."""
        table = self._tables[entity_set]
        row_id = row[table.definition.primary_id]
        if table.holders(row) - {row_id}:
            raise duplicate_record()
        self._remember(work, table, row_id)
        old = table.rows.get(row_id)
        if old is not None:
            table.unindex(old)
        else:
            table.order.add(row_id)
        self.version += 1
        row["versionnumber"] = self.version
        table.rows[row_id] = row
        table.tombstones.pop(row_id, None)
        table.index(row, row_id)
        return row

    def delete(self, work: UnitOfWork, entity_set: str, row_id: str) -> None:
        """Remove a row and log its deletion for change tracking."""
        table = self._tables[entity_set]
        self._remember(work, table, row_id)
        table.unindex(table.rows.pop(row_id))
        table.order.discard(row_id)
        self.version += 1
        table.tombstones[row_id] = (self.version, self._clock())

    def close(self) -> None:
        """Close the database, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- internals ---------------------------------------------------------------------------------------

    def _remember(self, work: UnitOfWork, table: _Table, row_id: str) -> None:
        slot = (table.definition.entity_set, row_id)
        if slot not in work.undo:
            work.undo[slot] = (table.rows.get(row_id), table.tombstones.get(row_id))

    def _rollback(self, work: UnitOfWork) -> None:
        for (entity_set, row_id), (row, tombstone) in reversed(work.undo.items()):
            table = self._tables[entity_set]
            current = table.rows.pop(row_id, None)
            if current is not None:
                table.unindex(current)
                table.order.discard(row_id)
            table.tombstones.pop(row_id, None)
            if row is not None:
                table.rows[row_id] = row
                table.index(row, row_id)
                table.order.add(row_id)
            if tombstone is not None:
                table.tombstones[row_id] = tombstone

    def _commit(self, work: UnitOfWork) -> None:
        self._log(work)
        if self._db is None or not work.undo:
            return
        upserts, removals, tombs, untombs = [], [], [], []
        for entity_set, row_id in work.undo:
            table = self._tables[entity_set]
            row = table.rows.get(row_id)
            if row is None:
                removals.append((entity_set, row_id))
            else:
                upserts.append((entity_set, row_id, orjson.dumps(row)))
            tombstone = table.tombstones.get(row_id)
            if tombstone is None:
                untombs.append((entity_set, row_id))
            else:
                tombs.append((entity_set, row_id, *tombstone))
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)", upserts)
            self._db.executemany("DELETE FROM rows WHERE entity_set = ? AND id = ?", removals)
            self._db.executemany("INSERT OR REPLACE INTO tombstones VALUES (?, ?, ?, ?)", tombs)
            self._db.executemany("DELETE FROM tombstones WHERE entity_set = ? AND id = ?", untombs)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (self.version,))

    def _log(self, work: UnitOfWork) -> None:
        for (entity_set, row_id), (before, _) in work.undo.items():
            table = self._tables[entity_set]
            row = table.rows.get(row_id)
            if row is None and before is None:
                continue  # created and deleted in one change set
            shown = row if row is not None else before
            assert shown is not None  # noqa: S101 - one of the two is set, as checked above
            key = {column: shown.get(column) for columns in table.key_index for column in columns}
            key[table.definition.primary_id] = row_id
            if row is None:
                self.writes.add(entity_set, key, "delete", work.writer, None)
            else:
                version = row.get(DATAVERSE_VERSION_COLUMN)
                old = before or {}
                changed = {column: value for column, value in row.items() if old.get(column) != value}
                self.writes.add(
                    entity_set, key, "upsert", work.writer, version, row["versionnumber"], changed
                )

    def _forget_old_tombstones(self, table: _Table) -> None:
        horizon = self._clock() - self._retention
        expired = [row_id for row_id, (_, deleted_at) in table.tombstones.items() if deleted_at < horizon]
        for row_id in expired:
            version, _ = table.tombstones.pop(row_id)
            table.forgotten_below = max(table.forgotten_below, version)
        if expired and self._db is not None:
            with self._db:
                self._db.executemany(
                    "DELETE FROM tombstones WHERE entity_set = ? AND id = ?",
                    [(table.definition.entity_set, row_id) for row_id in expired],
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    (f"forgotten:{table.definition.entity_set}", table.forgotten_below),
                )

    def _open(self, database: Path) -> None:
        # One connection, used from the server's event-loop thread after this constructor has loaded it.
        self._db = sqlite3.connect(database, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._load(self._db)

    def _load(self, db: sqlite3.Connection) -> None:
        for entity_set, row_id, data in db.execute("SELECT entity_set, id, data FROM rows"):
            table = self._tables.get(entity_set)
            if table is not None:
                row = orjson.loads(data)
                table.rows[row_id] = row
                table.index(row, row_id)
        for table in self._tables.values():
            table.order = IdOrder(table.rows)
        for entity_set, row_id, version, deleted_at in db.execute("SELECT * FROM tombstones"):
            if entity_set in self._tables:
                self._tables[entity_set].tombstones[row_id] = (version, deleted_at)
        for name, value in db.execute("SELECT name, value FROM meta"):
            if name == "version":
                self.version = int(value)
            elif name.startswith("forgotten:") and name[len("forgotten:") :] in self._tables:
                self._tables[name[len("forgotten:") :]].forgotten_below = int(value)


def _version(row: Row) -> int:
    return int(row["versionnumber"])
