"""The F&O twin's rows: writes checked against schema and relations, a RecId per row, change notifications.

Rows hold only the entity's fields: standard entities expose no modified-time or modified-by field. Each row
carries a weak ``@odata.etag``; an update or delete whose If-Match names another is refused (412), as OData v4
specifies:
https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part1-protocol.html#sec_UseofETagsforAvoidingUpdateConflicts
Each row also has a RecId (int64, increasing, never reused, kept across restarts) standing for its root table
record, from which data events build the row's virtual-entity GUID (see sandbox/fo/context.py). Key comparison
ignores case, as the SQL collation under the real entities does; company ids are kept in lower case, as F&O
answers them.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dualbus.d365 import FoEntity
from dualbus.sandbox.fo.entities import ENTITIES
from dualbus.sandbox.fo.errors import BadRequestError, ConflictError, NotFoundError, PreconditionFailedError
from dualbus.sandbox.fo.persistence import RowFile
from dualbus.sandbox.fo.relations import Exists, check_relations
from dualbus.sandbox.fo.validation import clean_body

__all__ = ["ETAG", "Change", "FoStore", "Row"]

ETAG = "@odata.etag"

Row = dict[str, Any]
_KeyTuple = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """One committed create, update or delete, in commit order (``sequence``); rows without the ETag."""

    entity: str
    change_type: str  # "Create" | "Update" | "Delete"
    keys: Mapping[str, Any]
    row: Row  # after a create or update; the removed row for a delete
    before: Row | None  # before an update or delete
    changed_fields: tuple[str, ...]
    sequence: int
    time: datetime
    modified_by: str  # the calling application
    rec_id: int


@dataclass(frozen=True, slots=True)
class _Stored:
    row: Row
    rec_id: int


# "2024-01-01T00:00:00": the shortest text read as a date-time key.
_DATE_TIME_LENGTH = 19


def _norm(values: tuple[Any, ...]) -> _KeyTuple:
    return tuple(_norm_one(v) for v in values)


def _norm_one(value: object) -> str:
    """A key value as compared: text without regard to case, and a date-time as its instant, whether it
    came as a row's text or as a key path's bare literal (parsed to a datetime)."""
    if isinstance(value, datetime):
        return _instant_text(value)
    text = str(value)
    if len(text) >= _DATE_TIME_LENGTH and text[4] == "-" and text[10] in "Tt":
        try:
            return _instant_text(datetime.fromisoformat(text))
        except ValueError:
            pass  # text that only looks like a date-time
    return text.casefold()


def _instant_text(value: datetime) -> str:
    instant = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return instant.isoformat()


class FoStore:
    """All rows of all entities, in memory, written through to SQLite when ``database`` is given."""

    def __init__(self, database: Path | None = None) -> None:
        self._lock = threading.RLock()
        self._tables: dict[str, dict[_KeyTuple, _Stored]] = {name: {} for name in ENTITIES}
        # Each entity's keys in order, kept until a row is created or deleted.
        self._orders: dict[str, list[_KeyTuple]] = {}
        self._listeners: list[Callable[[Change], None]] = []
        self._pending: list[Change] | None = None
        self._sequence = 0
        self._rec_id = 0
        self._file = RowFile(database) if database is not None else None
        if self._file is not None:
            self._load(self._file)

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` with every committed change, in commit order."""
        self._listeners.append(listener)

    def rows(self, entity: str) -> list[Row]:
        """Copies of every row of ``entity``, ordered by key."""
        return [dict(row) for row in self.row_views(entity)]

    def row_views(self, entity: str) -> list[Row]:
        """Every row of ``entity``, ordered by key, as stored: read them, never change them.

        A query reads every row of an entity and answers a page of them; copying them all first cost an
        initial sync of half a million rows minutes. Stored rows are never changed in place (an update
        stores a new one), so a view stays what it was when taken.
        """
        return self.row_views_after(entity, ())

    def row_views_after(self, entity: str, bound: tuple[Any, ...]) -> list[Row]:
        """The stored rows (as ``row_views``) whose key, compared as keys are (text, without regard to
        case), comes after ``bound``, a key or a leading part of one; ``()``: every row."""
        with self._lock:
            table = self._table(entity)
            order = self._order(entity)
            start = bisect.bisect_right(order, _norm(bound)) if bound else 0
            return [table[k].row for k in order[start:]]

    def row_views_of(self, entity: str, keys: Iterable[tuple[Any, ...]]) -> list[Row]:
        """The stored rows (as ``row_views``) with these keys, ordered by key; a key without a row (or named
        twice) is passed over (or read once)."""
        with self._lock:
            table = self._table(entity)
            found = {key: table[key] for key in map(_norm, keys) if key in table}
        return [found[key].row for key in sorted(found)]

    def iter_row_views_after(self, entity: str, bound: tuple[Any, ...]) -> Iterator[Row]:
        """The rows of ``row_views_after``, read one by one as the caller asks for them.

        A keyset page wants the few thousand rows after its bound: listing every row after it made each page
        of a half-million-row table cost in proportion to the rest of the table, and the whole initial sync
        in proportion to its square. The keys are the order as it was when reading began (an order is
        replaced, never changed in place); a row deleted since is passed over, a row updated since is read
        as it is now.
        """
        with self._lock:
            table = self._table(entity)
            order = self._order(entity)
            start = bisect.bisect_right(order, _norm(bound)) if bound else 0
        for index in range(start, len(order)):
            stored = table.get(order[index])
            if stored is not None:
                yield stored.row

    def count(self, entity: str) -> int:
        """How many rows ``entity`` holds."""
        return len(self._table(entity))

    def get(self, entity: str, key: tuple[Any, ...]) -> Row:
        """A copy of the row with this key, or NotFoundError."""
        with self._lock:
            return dict(self._current(entity, key).row)

    def insert(self, entity: str, values: Mapping[str, Any], *, modified_by: str) -> Row:
        """Create a row; RefusedError for a body or relation F&O refuses, ConflictError for a taken key."""
        definition = _entity(entity)
        row = _lower_company(clean_body(definition, values))
        missing = [k for k in definition.keys if row.get(k) in (None, "")]
        if missing:
            raise BadRequestError(f"{entity}: key field(s) {', '.join(missing)} missing")
        key = _norm(tuple(row[k] for k in definition.keys))
        with self._lock:
            if key in self._table(entity):
                raise ConflictError(f"{entity}: a row with key {key} already exists")
            check_relations(definition, row, row, self._exists_for(entity, row))
            self._rec_id += 1
            stored = _Stored(row, self._rec_id)
            changed = tuple(sorted(row))
            self._commit(entity, "Create", stored, before=None, changed=changed, modified_by=modified_by)
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
        definition = _entity(entity)
        changes = _lower_company(clean_body(definition, values))
        with self._lock:
            current = self._current(entity, key)
            _check_etag(current.row, if_match)
            _check_keys_kept(definition, current.row, changes)
            row = {**current.row, **changes}
            check_relations(definition, row, changes, self._exists_for(entity, row))
            changed = tuple(sorted(f for f, v in changes.items() if current.row.get(f) != v))
            stored, before = _Stored(row, current.rec_id), current.row
            self._commit(entity, "Update", stored, before=before, changed=changed, modified_by=modified_by)
            return dict(row)

    def delete(
        self, entity: str, key: tuple[Any, ...], *, modified_by: str, if_match: str | None = None
    ) -> None:
        """Remove a row; NotFoundError when it does not exist, PreconditionFailedError on a stale ETag."""
        with self._lock:
            current = self._current(entity, key)
            _check_etag(current.row, if_match)
            self._commit(entity, "Delete", current, before=current.row, changed=(), modified_by=modified_by)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (an OData change set); notifications wait."""
        with self._lock:
            snapshot = {name: dict(table) for name, table in self._tables.items()}
            saved = (self._sequence, self._rec_id)
            self._pending = []
            try:
                yield
            except BaseException:
                self._tables, (self._sequence, self._rec_id) = snapshot, saved
                self._pending = None
                if self._file is not None:
                    self._file.rollback()
                raise
            pending, self._pending = self._pending, None
            if self._file is not None:
                self._file.commit()
        for change in pending:
            self._notify(change)

    def close(self) -> None:
        """Close the SQLite file, if any."""
        if self._file is not None:
            self._file.close()

    def _table(self, entity: str) -> dict[_KeyTuple, _Stored]:
        table = self._tables.get(entity)
        if table is None:
            raise NotFoundError(f"no entity set named {entity}")
        return table

    def _order(self, entity: str) -> list[_KeyTuple]:
        """The entity's keys in order, sorted again only after a row was created or deleted."""
        order = self._orders.get(entity)
        if order is None:
            order = self._orders[entity] = sorted(self._table(entity))
        return order

    def _current(self, entity: str, key: tuple[Any, ...]) -> _Stored:
        stored = self._table(entity).get(_norm(key))
        if stored is None:
            raise NotFoundError(f"no {entity} row with key {key}")
        return stored

    def _exists_for(self, writing: str, row: Row) -> Exists:
        def exists(entity_set: str, match: Mapping[str, Any]) -> bool:
            # A row may refer to itself (a customer that is its own invoice account) before it is stored.
            return (entity_set == writing and _matches(row, match)) or self._exists(entity_set, match)

        return exists

    def _exists(self, entity_set: str, match: Mapping[str, Any]) -> bool:
        keys, table = ENTITIES[entity_set].keys, self._tables[entity_set]
        if set(match) == set(keys):
            return _norm(tuple(match[k] for k in keys)) in table
        return any(_matches(stored.row, match) for stored in table.values())

    def _commit(
        self,
        entity: str,
        change_type: str,
        stored: _Stored,
        *,
        before: Row | None,
        changed: tuple[str, ...],
        modified_by: str,
    ) -> None:
        self._sequence += 1
        keys = {k: stored.row[k] for k in ENTITIES[entity].keys}
        norm = _norm(tuple(keys.values()))
        if change_type != "Update":
            self._orders.pop(entity, None)
        if change_type == "Delete":
            del self._tables[entity][norm]
        else:
            # The row's version for optimistic concurrency: the commit sequence, shown as a weak ETag.
            stored.row[ETAG] = f'W/"{self._sequence}"'
            self._tables[entity][norm] = stored
        change = Change(
            entity=entity,
            change_type=change_type,
            keys=keys,
            row=_fields(stored.row),
            before=None if before is None else _fields(before),
            changed_fields=changed,
            sequence=self._sequence,
            time=datetime.now(UTC),
            modified_by=modified_by,
            rec_id=stored.rec_id,
        )
        self._save(entity, norm, None if change_type == "Delete" else stored, change)

    def _save(self, entity: str, key: _KeyTuple, stored: _Stored | None, change: Change) -> None:
        if self._file is not None:
            self._file.save(entity, key, change.rec_id, None if stored is None else stored.row)
            self._file.set_counter("sequence", self._sequence)
            self._file.set_counter("rec_id", self._rec_id)
            if self._pending is None:
                self._file.commit()
        if self._pending is not None:
            self._pending.append(change)
        else:
            self._notify(change)

    def _notify(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    def _load(self, file: RowFile) -> None:
        self._orders.clear()
        for entity, key, rec_id, row in file.records():
            if entity in self._tables:
                self._tables[entity][key] = _Stored(row, rec_id)
        self._sequence, self._rec_id = file.counter("sequence"), file.counter("rec_id")


def _entity(name: str) -> FoEntity:
    definition = ENTITIES.get(name)
    if definition is None:
        raise NotFoundError(f"no entity set named {name}")
    return definition


def _lower_company(row: Row) -> Row:
    if isinstance(row.get("dataAreaId"), str):
        # F&O answers company ids in lower case whatever case they were written in.
        row["dataAreaId"] = row["dataAreaId"].lower()
    return row


def _matches(row: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
    return all(_norm((row.get(name),)) == _norm((value,)) for name, value in match.items())


def _fields(row: Row) -> Row:
    return {name: value for name, value in row.items() if name != ETAG}


def _check_etag(row: Row, if_match: str | None) -> None:
    if if_match is not None and if_match.strip() != "*" and if_match.strip() != row.get(ETAG):
        raise PreconditionFailedError(f"the row changed since {if_match}; it is now {row.get(ETAG)}")


def _check_keys_kept(definition: FoEntity, current: Row, changes: Row) -> None:
    moved = [k for k in definition.keys if k in changes and _norm((changes[k],)) != _norm((current[k],))]
    if moved:
        raise BadRequestError(f"{definition.entity_set}: key field(s) {', '.join(moved)} cannot be changed")
