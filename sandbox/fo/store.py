"""The F&O twin's rows: validated writes, a modified stamp per row, change notifications, optional SQLite.

Every write records ``ModifiedDateTime`` (strictly increasing, so a producer can poll with a watermark and
miss nothing) and ``ModifiedBy`` (the calling application), so a producer can skip what it wrote itself.
Key comparison ignores case, as the SQL collation under the real entities does. Each row carries a weak
``@odata.etag``; an update or delete whose If-Match names another is refused (412), as OData v4 specifies:
https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part1-protocol.html#sec_UseofETagsforAvoidingUpdateConflicts
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from sandbox.fo.entities import ENTITIES, EntityDef
from sandbox.fo.errors import BadRequestError, ConflictError, NotFoundError, PreconditionFailedError

__all__ = ["ETAG", "Change", "FoStore", "Row"]

ETAG = "@odata.etag"

Row = dict[str, Any]
_KeyTuple = tuple[str, ...]
_SYSTEM_FIELDS = frozenset({"ModifiedDateTime", "ModifiedBy"})


@dataclass(frozen=True, slots=True)
class Change:
    """One committed create, update or delete, in commit order (``sequence``)."""

    entity: str
    change_type: str  # "Create" | "Update" | "Delete"
    keys: Mapping[str, Any]
    row: Row
    changed_fields: tuple[str, ...]
    sequence: int
    time: datetime
    modified_by: str


def _norm(values: tuple[Any, ...]) -> _KeyTuple:
    return tuple(str(v).casefold() for v in values)


class FoStore:
    """All rows of all entities, in memory, written through to SQLite when ``database`` is given."""

    def __init__(self, database: Path | None = None) -> None:
        self._lock = threading.RLock()
        self._tables: dict[str, dict[_KeyTuple, Row]] = {name: {} for name in ENTITIES}
        self._listeners: list[Callable[[Change], None]] = []
        self._pending: list[Change] | None = None
        self._sequence = 0
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
        self._db = _open(database) if database is not None else None
        if self._db is not None:
            self._load()

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` with every committed change, in commit order."""
        self._listeners.append(listener)

    def rows(self, entity: str) -> list[Row]:
        """Copies of every row of ``entity``, ordered by key."""
        with self._lock:
            table = self._table(entity)
            return [dict(table[k]) for k in sorted(table)]

    def count(self, entity: str) -> int:
        """How many rows ``entity`` holds."""
        return len(self._table(entity))

    def get(self, entity: str, key: tuple[Any, ...]) -> Row:
        """A copy of the row with this key, or NotFoundError."""
        with self._lock:
            row = self._table(entity).get(_norm(key))
        if row is None:
            raise NotFoundError(f"no {entity} row with key {key}")
        return dict(row)

    def insert(self, entity: str, values: Mapping[str, Any], *, modified_by: str) -> Row:
        """Create a row; ConflictError when its key exists."""
        definition = ENTITIES[entity]
        row = _clean(definition, values)
        missing = [k for k in definition.keys if row.get(k) in (None, "")]
        if missing:
            raise BadRequestError(f"{entity}: key field(s) {', '.join(missing)} missing")
        key = _norm(tuple(row[k] for k in definition.keys))
        with self._lock:
            table = self._table(entity)
            if key in table:
                raise ConflictError(f"{entity}: a row with key {key} already exists")
            self._stamp(row, modified_by)
            table[key] = row
            self._commit(entity, "Create", row, tuple(sorted(set(row) - _SYSTEM_FIELDS)), key)
            return dict(row)

    def update(
        self,
        entity: str,
        key: tuple[Any, ...],
        values: Mapping[str, Any],
        *,
        modified_by: str,
        if_match: str | None = None,
    ) -> Row:
        """Change some fields of an existing row; keys cannot change; ``if_match`` must name its ETag."""
        definition = ENTITIES[entity]
        changes = _clean(definition, values)
        norm = _norm(key)
        with self._lock:
            current = self._table(entity).get(norm)
            if current is None:
                raise NotFoundError(f"no {entity} row with key {key}")
            _check_etag(current, if_match)
            moved = [
                k for k in definition.keys if k in changes and _norm((changes[k],)) != _norm((current[k],))
            ]
            if moved:
                raise BadRequestError(f"{entity}: key field(s) {', '.join(moved)} cannot be changed")
            changed = tuple(sorted(f for f, v in changes.items() if current.get(f) != v))
            row = {**current, **changes}
            self._stamp(row, modified_by)
            self._table(entity)[norm] = row
            self._commit(entity, "Update", row, changed, norm)
            return dict(row)

    def delete(
        self, entity: str, key: tuple[Any, ...], *, modified_by: str, if_match: str | None = None
    ) -> None:
        """Remove a row; NotFoundError when it does not exist, PreconditionFailedError on a stale ETag."""
        norm = _norm(key)
        with self._lock:
            row = self._table(entity).get(norm)
            if row is None:
                raise NotFoundError(f"no {entity} row with key {key}")
            _check_etag(row, if_match)
            del self._table(entity)[norm]
            gone = {**row}
            self._stamp(gone, modified_by)
            self._commit(entity, "Delete", gone, (), norm)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (an OData change set); notifications wait."""
        with self._lock:
            snapshot = {name: dict(table) for name, table in self._tables.items()}
            saved = (self._sequence, self._last_time)
            self._pending = []
            try:
                yield
            except BaseException:
                self._tables = snapshot
                self._sequence, self._last_time = saved
                self._pending = None
                if self._db is not None:
                    self._db.rollback()
                raise
            pending, self._pending = self._pending, None
            if self._db is not None:
                self._db.commit()
        for change in pending:
            self._notify(change)

    def close(self) -> None:
        """Close the SQLite file, if any."""
        if self._db is not None:
            self._db.close()

    def _table(self, entity: str) -> dict[_KeyTuple, Row]:
        table = self._tables.get(entity)
        if table is None:
            raise NotFoundError(f"no entity set named {entity}")
        return table

    def _stamp(self, row: Row, modified_by: str) -> None:
        # Strictly increasing stamps: a watermark query "gt last seen" never skips a same-instant write.
        now = datetime.now(UTC)
        self._last_time = max(now, self._last_time + timedelta(microseconds=1))
        row["ModifiedDateTime"] = self._last_time.isoformat(timespec="microseconds").replace("+00:00", "Z")
        row["ModifiedBy"] = modified_by

    def _commit(
        self, entity: str, change_type: str, row: Row, changed: tuple[str, ...], key: _KeyTuple
    ) -> None:
        self._sequence += 1
        # The row's version for optimistic concurrency: the commit sequence, shown as a weak ETag.
        row[ETAG] = f'W/"{self._sequence}"'
        definition = ENTITIES[entity]
        change = Change(
            entity=entity,
            change_type=change_type,
            keys={k: row[k] for k in definition.keys},
            row=dict(row),
            changed_fields=changed,
            sequence=self._sequence,
            time=self._last_time,
            modified_by=str(row["ModifiedBy"]),
        )
        if self._db is not None:
            _persist(self._db, entity, key, None if change_type == "Delete" else row, self._sequence)
            if self._pending is None:
                self._db.commit()
        if self._pending is not None:
            self._pending.append(change)
        else:
            self._notify(change)

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    def _load(self) -> None:
        assert self._db is not None  # noqa: S101 - only called when a database is open
        for entity, key, data in self._db.execute("SELECT entity, key, data FROM rows"):
            if entity in self._tables:
                self._tables[entity][tuple(orjson.loads(key))] = orjson.loads(data)
        found = self._db.execute("SELECT value FROM meta WHERE name = 'sequence'").fetchone()
        self._sequence = int(found[0]) if found else 0


def _check_etag(row: Row, if_match: str | None) -> None:
    if if_match is not None and if_match.strip() != "*" and if_match.strip() != row.get(ETAG):
        raise PreconditionFailedError(f"the row changed since {if_match}; it is now {row.get(ETAG)}")


def _clean(definition: EntityDef, values: Mapping[str, Any]) -> Row:
    """Check declared lengths and enum domains; drop the fields only the twin may set."""
    row: Row = {}
    for name, value in values.items():
        if name in _SYSTEM_FIELDS or name.startswith("@odata."):
            continue
        limit = definition.max_lengths.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            raise BadRequestError(f"{definition.name}.{name}: the value is longer than {limit} characters")
        domain = definition.enums.get(name)
        if domain is not None and value is not None and value not in domain:
            raise BadRequestError(f"{definition.name}.{name}: {value!r} is not one of {', '.join(domain)}")
        row[name] = value
    if "dataAreaId" in row and isinstance(row["dataAreaId"], str):
        # F&O answers company ids in lower case whatever case they were written in.
        row["dataAreaId"] = row["dataAreaId"].lower()
    return row


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    db.execute(
        "CREATE TABLE IF NOT EXISTS rows (entity TEXT, key TEXT, data TEXT, PRIMARY KEY (entity, key))"
    )
    db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
    db.commit()
    return db


def _persist(db: sqlite3.Connection, entity: str, key: _KeyTuple, row: Row | None, sequence: int) -> None:
    encoded_key = orjson.dumps(list(key)).decode()
    if row is None:
        db.execute("DELETE FROM rows WHERE entity = ? AND key = ?", (entity, encoded_key))
    else:
        db.execute(
            "INSERT OR REPLACE INTO rows (entity, key, data) VALUES (?, ?, ?)",
            (entity, encoded_key, orjson.dumps(row).decode()),
        )
    db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('sequence', ?)", (str(sequence),))
