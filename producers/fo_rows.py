"""What the F&O producer knows of one entity, and how a read row becomes envelopes, digests and index entries.

Events and scans both publish a row's *current* state as read over OData, with a version from the
producer's clock and ``base_version`` = the row's ``DualbusSourceVersion`` (the Dataverse version dualbus
last applied to it; 0 when none). Each (map, key) keeps a digest of the state last published, the base
version included and written out in front (``<base>:<sha-256>``): a later edit that restores an earlier
value is not lost. A state dualbus wrote itself, unchanged since, is recorded and not published
(``shared.fo_echo``): the base version kept in front tells whether dualbus has written the row since the
producer last published it.
Beside the digest it keeps the row's delete values (``SourceTable.delete_fields``), so that a delete found
without the row (a scan, an event without a PreImage) still names the row on the other side.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from dualbus.d365 import FO_VERSION_FIELD, FO_WRITE_DIGEST_FIELD, FoEntity, fo_entities
from dualbus.producers.checkpoints import CheckpointStore, DigestChange, RowRef
from dualbus.producers.clock import VersionClock, change_time
from dualbus.producers.errors import SourceError
from dualbus.producers.events import build_envelope
from dualbus.producers.flow import PUBLISH_RETRY, Outbox
from dualbus.producers.fo_reader import FoReader
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Operation
from dualbus.shared.errors import TransformError
from dualbus.shared.fo_echo import is_echo
from dualbus.shared.retry import RetryPolicy

__all__ = [
    "EntityLocks",
    "FoBatch",
    "FoRowPublisher",
    "FoSource",
    "base_version",
    "fo_sources",
    "key_from_text",
    "key_text",
    "map_key",
]

Row = Mapping[str, object]
Key = dict[str, str | int]


@dataclass(frozen=True, slots=True)
class FoSource:
    """One F&O entity and every map that reads it."""

    schema: FoEntity
    tables: tuple[SourceTable, ...]

    @property
    def name(self) -> str:
        """The OData entity set."""
        return self.schema.entity_set

    @property
    def select(self) -> tuple[str, ...]:
        """What a read asks for: the keys, each map's carried, key and delete fields (what a write digest
        covers among them), the base version, and the write digest where a map writes the entity."""
        names = [*self.schema.keys]
        for table in self.tables:
            names.extend([*table.carried_fields, *table.key_fields, *table.delete_fields])
        # Only entities dualbus writes hold a write digest (docs/deploy.md); reading it elsewhere would ask
        # a deployment for a field it need not have.
        written = any(table.table_map.carries("fo") for table in self.tables)
        return tuple(dict.fromkeys([*names, FO_VERSION_FIELD, *([FO_WRITE_DIGEST_FIELD] if written else [])]))

    @property
    def remembered(self) -> tuple[str, ...]:
        """What the row-id index keeps: the entity's keys, every map's keys and filter fields."""
        names = [*self.schema.keys]
        for table in self.tables:
            names.extend([*table.key_fields, *(c.field for c in table.table_map.source_filter.fo)])
        return tuple(dict.fromkeys(names))

    def entity_key(self, values: Row) -> dict[str, object] | None:
        """The entity's own key from ``values``, or None when a part is unknown."""
        key = {name: values.get(name) for name in self.schema.keys}
        return key if all(value not in (None, "") for value in key.values()) else None

    def index_ref(self, values: Row) -> RowRef:
        """The row-id index entry of a row: the remembered fields it has."""
        return {"values": {name: values[name] for name in self.remembered if name in values}}


def fo_fields_read(tables: Iterable[SourceTable]) -> dict[str, tuple[str, ...]]:
    """Every field the producer's reads name, by entity set: what a tenant must have (docs/deploy.md)."""
    return {name: source.select for name, source in fo_sources(tables).items()}


def fo_sources(tables: Iterable[SourceTable]) -> dict[str, FoSource]:
    """The maps reading from F&O, grouped by entity set."""
    grouped: dict[str, list[SourceTable]] = {}
    for table in tables:
        grouped.setdefault(table.name, []).append(table)
    entities = fo_entities()
    return {name: FoSource(entities[name], tuple(group)) for name, group in grouped.items()}


class EntityLocks:
    """One lock per entity: an event and a scan page of one entity never interleave read and record."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def __call__(self, entity: str) -> asyncio.Lock:
        """The lock of ``entity``."""
        return self._locks.setdefault(entity, asyncio.Lock())


def base_version(row: Row) -> int:
    """The row's ``DualbusSourceVersion``, 0 when it holds none."""
    value = row.get(FO_VERSION_FIELD)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceError(f"{FO_VERSION_FIELD} is not an integer: {value!r}")
    return value


def key_text(key: Mapping[str, object]) -> str:
    """A key as canonical JSON, how digests are stored."""
    return orjson.dumps(dict(key), option=orjson.OPT_SORT_KEYS).decode()


def key_from_text(text: str) -> Key:
    """A stored key back as an envelope key."""
    key: Key = orjson.loads(text)
    return key


def map_key(table: SourceTable, values: Row) -> Key | None:
    """The map's key of a row, or None when a part of it is missing."""
    try:
        return table.key_of(values)
    except TransformError:
        return None


def _digest(data: Mapping[str, object], base: int) -> str:
    encoded = orjson.dumps({"base": base, "data": dict(data)}, option=orjson.OPT_SORT_KEYS)
    return f"{base}{_MARK_END}{hashlib.sha256(encoded).hexdigest()}"


# Between the base version and the hash of a stored digest. A digest stored by an earlier release is the
# hash alone (the same hash), and says nothing of its base version.
_MARK_END = ":"
# The base version of a state whose digest does not tell it: as new as any, so nothing is taken for an echo.
_UNKNOWN_MARK = 2**63


def _same_state(stored: str | None, digest: str) -> bool:
    """Whether ``stored`` is the digest of the state ``digest`` is, in either release's form."""
    return stored is not None and (stored == digest or stored == digest.partition(_MARK_END)[2])


def _published_mark(stored: str | None) -> int | None:
    """The base version of the state last published (None: none was)."""
    if stored is None:
        return None
    mark, found, _ = stored.partition(_MARK_END)
    return int(mark) if found and mark.isdigit() else _UNKNOWN_MARK


@dataclass(slots=True)
class FoBatch:
    """What one step publishes and then records: envelopes, digest changes, row-id index changes."""

    clock: VersionClock
    # The scan generation that saw these rows; None: each row's own version (an event's write).
    seen: int | None = None
    time: datetime | None = None
    outbox: Outbox = field(default_factory=Outbox)
    unchanged: int = 0
    # States dualbus wrote itself, recorded and not published (shared.fo_echo), by area.
    echoes: dict[str, int] = field(default_factory=dict)
    # (area, key) deleted in this batch, and where its envelope is: a consumer applies a delete to every map
    # of the area that reads the entity, so one delete per key and area is all there is to send.
    _deleted: dict[tuple[str, str], int] = field(default_factory=dict)

    def state(self, table: SourceTable, row: Row, stored: str | None, operation: Operation | None) -> None:
        """The row's state for ``table`` unless ``stored`` (its digest) says it was published already."""
        key = table.key_of(row)
        base = base_version(row)
        digest = _digest(table.data_of(row), base)
        if _same_state(stored, digest):
            self.unchanged += 1
            if self.seen is not None:
                # Also gives a key stored before deletes carried values the values of its row.
                self._record(table, key, digest, self.seen, row)
            return
        if is_echo(table.table_map, row, base, _published_mark(stored)):
            # Recorded as if published: its base version is then the one a later edit is compared with.
            self.echoes[table.area] = self.echoes.get(table.area, 0) + 1
            self._record(table, key, digest, self.clock.next() if self.seen is None else self.seen, row)
            return
        version = self.clock.next()
        kind = operation or (Operation.UPDATE if stored else Operation.CREATE)
        moment = self.time or change_time(version)
        envelope = build_envelope(table, row, kind, source_version=version, time=moment, base_version=base)
        self.outbox.envelopes.append(envelope)
        self._record(table, key, digest, version if self.seen is None else self.seen, row)

    def delete(self, table: SourceTable, key: Key, base: int | None, known: Row | None) -> None:
        """A delete of ``key`` for ``table`` carrying its delete values from ``known``, digest forgotten.

        ``known`` is what is known of the gone row (its state, a PreImage, the stored values); None when
        nothing is, and the delete then carries the key only.
        """
        text, values = key_text(key), known or {}
        self.forget(table, text)
        at = self._deleted.get((table.area, text))
        if at is not None:
            self._merge(at, table.delete_data(values))
            return
        self._deleted[(table.area, text)] = len(self.outbox.envelopes)
        version = self.clock.next()
        moment = self.time or change_time(version)
        envelope = build_envelope(
            table, values, Operation.DELETE, source_version=version, time=moment, key=key, base_version=base
        )
        self.outbox.envelopes.append(envelope)

    def forget(self, table: SourceTable, text: str) -> None:
        """Drop the digest stored under ``text`` without publishing anything."""
        self.outbox.digests.append(DigestChange(table.table_map.name, text, None, 0))

    def _record(self, table: SourceTable, key: Key, digest: str, seen: int, row: Row) -> None:
        change = DigestChange(table.table_map.name, key_text(key), digest, seen, table.delete_data(row))
        self.outbox.digests.append(change)

    def _merge(self, at: int, data: Mapping[str, object]) -> None:
        """Add another map's delete values to the one delete of its area (each map finds what it needs)."""
        sent = self.outbox.envelopes[at]
        self.outbox.envelopes[at] = sent.model_copy(update={"data": {**data, **sent.data}})

    def index(self, entity: str, row_id: str, ref: RowRef | None) -> None:
        """Remember (or, with None, forget) what a virtual-entity row id stands for."""
        self.outbox.index.append((entity, row_id, ref))


class FoRowPublisher:
    """What the event handler and the scan share: where rows are read, published, versioned and recorded."""

    def __init__(
        self,
        reader: FoReader,
        tables: Iterable[SourceTable],
        publisher: Publisher,
        store: CheckpointStore,
        clock: VersionClock,
        *,
        locks: EntityLocks | None = None,
        retry: RetryPolicy = PUBLISH_RETRY,
    ) -> None:
        self._reader = reader
        self._sources = fo_sources(tables)
        self._publisher = publisher
        self._store = store
        self._clock = clock
        # One lock per entity: an event and a scan page of one entity never interleave their publishes.
        self._locks = locks or EntityLocks()
        self._retry = retry
        self.unchanged = 0
        self.skipped_echo = 0
        self._start()

    def _start(self) -> None:
        """Set up what a subclass keeps besides the shared parts (counters, warnings given)."""

    def _counted(self, batches: Iterable[FoBatch]) -> None:
        """Count what published batches left out: states found unchanged, and dualbus's own writes."""
        for batch in batches:
            self.unchanged += batch.unchanged
            for area, count in batch.echoes.items():
                self.skipped_echo += count
                self._publisher.metrics.skipped_echo.add(count, {"area": area})
