"""From a parsed F&O data event to published row states: find the row, read it now, publish, record.

Only the row's identity is taken from the event. Its key comes from the Target, the PreImage or the durable
row-id index (a delete's Target may carry only the virtual-entity id); the producer then reads the row's
current state over OData and publishes that for every map that reads the entity and takes the row, or a delete
per map when the row is gone, carrying the values that name the row on the other side (from the event's
PreImage, else those stored when the row was last published). A row it cannot identify is logged and counted,
and left to the scan (``producers.fo_poller``), never dropped silently. The handler returns only once
everything is published and recorded, so the caller acknowledges the event after that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from dualbus.d365 import FO_VERSION_FIELD
from dualbus.producers.flow import Outbox, publish_then_checkpoint
from dualbus.producers.fo_events import FoDataEvent
from dualbus.producers.fo_reader import KEYS_PER_QUERY
from dualbus.producers.fo_rows import FoBatch, FoRowPublisher, FoSource, base_version, key_text, map_key
from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Operation
from dualbus.shared.together import side_by_side

__all__ = ["FoEventHandler"]

_log = logging.getLogger(__name__)
Values = dict[str, object]


class FoEventHandler(FoRowPublisher):
    """Publishes the current state of the rows data events name; returns only once it is on the bus."""

    def _start(self) -> None:
        self._warned: set[str] = set()
        self.ignored = 0
        self.unresolved = 0

    @property
    def entities(self) -> tuple[str, ...]:
        """The F&O entity sets whose events this handler publishes."""
        return tuple(self._sources)

    async def handle(self, events: Sequence[FoDataEvent]) -> int:
        """Publish the rows the events name; returns how many envelopes were published.

        The events of one entity are handled together: the rows they name are read ``KEYS_PER_QUERY`` a
        request, each once, and what they publish goes to Service Bus in one publish. A row named by
        several events publishes its state as of that one read (what the producer publishes of an event is
        the row's current state, never the event's own values), the last of them standing for the row.
        Raises TransientError (retry later) or SourceError (F&O answered something unusable).
        """
        by_entity: dict[str, list[FoDataEvent]] = {}
        for event in events:
            if event.entity not in self._sources:
                self._ignore(event)
                continue
            by_entity.setdefault(str(event.entity), []).append(event)
        # Entities side by side: each is read and published under its own lock (the scan takes it too),
        # so a backlog of several entities' events costs the longest entity's round trips, not their sum.
        counts = await side_by_side(self._handle_entity(entity, named) for entity, named in by_entity.items())
        return sum(counts)

    async def _handle_entity(self, entity: str, events: Sequence[FoDataEvent]) -> int:
        source = self._sources[entity]
        async with self._locks(source.name):
            return await self._handle_rows(source, events)

    async def _handle_rows(self, source: FoSource, events: Sequence[FoDataEvent]) -> int:
        # By key text, case-folded (F&O compares keys without case): the row's last event and what it knows.
        latest: dict[str, tuple[FoDataEvent, Values, dict[str, Any]]] = {}
        # What earlier events of this call told of a row id: a later delete naming only the id finds it.
        recent: dict[str, Values] = {}
        # The row's last delete event: its PreImage names a gone row even when a create event came after it
        # (F&O's processing threads deliver side by side, so a create may arrive after its row's delete).
        deletes: dict[str, FoDataEvent] = {}
        for event in events:
            values = self._known(source, event, recent.get(event.row_id))
            key = source.entity_key(values)
            if key is None:
                self._unresolved(source, event, "its key is in neither the event nor the row-id index")
                continue
            recent[event.row_id] = values
            named = key_text(key).casefold()
            latest.pop(named, None)  # the row's last event stands for it, in that event's place
            latest[named] = (event, values, key)
            if event.operation is Operation.DELETE:
                deletes[named] = event
        rows = await self._current_rows(source, [key for *_, key in latest.values()])
        batches = []
        for named, (event, values, _) in latest.items():
            batch = FoBatch(self._clock, time=event.time)
            row = rows.get(named)
            if row is None:
                self._gone(source, deletes.get(named, event), values, batch)
            else:
                self._present(source, event, row, batch)
            batches.append(batch)
        return await self._publish(batches)

    async def _current_rows(self, source: FoSource, keys: Sequence[dict[str, Any]]) -> dict[str, Values]:
        """The rows with these keys as they are now, by key text case-folded; a gone row is not there."""
        found: dict[str, Values] = {}
        # The queries go side by side: their rows are all read before any version is given (under the
        # entity's lock), so the order in which they come back changes nothing.
        chunks = [keys[start : start + KEYS_PER_QUERY] for start in range(0, len(keys), KEYS_PER_QUERY)]
        reads = (self._reader.matching(source.schema, chunk, source.select) for chunk in chunks)
        for rows in await side_by_side(reads):
            for row in rows:
                key = source.entity_key(row)
                if key is not None:
                    found.setdefault(key_text(key).casefold(), row)
        return found

    async def _publish(self, batches: Sequence[FoBatch]) -> int:
        outbox = Outbox()
        for batch in batches:
            outbox.envelopes.extend(batch.outbox.envelopes)
            outbox.index.extend(batch.outbox.index)
            outbox.digests.extend(batch.outbox.digests)
        await publish_then_checkpoint(
            self._publisher,
            self._store,
            outbox.envelopes,
            {},
            index=outbox.index,
            digests=outbox.digests,
            retry=self._retry,
        )
        self._counted(batches)
        return len(outbox.envelopes)

    def _known(self, source: FoSource, event: FoDataEvent, recent: Values | None = None) -> Values:
        """Every field value known of the row: the index, the PreImage and the Target, newest winning.

        ``recent``: what an earlier event of the same call knew of the row, newer than the index.
        """
        ref = self._store.row_ref(source.name, event.row_id)
        indexed: Mapping[str, object] = {**(ref["values"] if ref else {}), **(recent or {})}
        before = event.pre_image or {}
        # A delete's key is the one published before (the index holds what OData answered), not a new one.
        layers = (
            [event.target, before, indexed]
            if event.operation is Operation.DELETE
            else [indexed, before, event.target]
        )
        known: Values = {}
        for layer in layers:
            known.update({name: value for name, value in layer.items() if value is not None})
        return known

    def _present(self, source: FoSource, event: FoDataEvent, row: Values, batch: FoBatch) -> None:
        # A delete event of a row that exists again publishes its state like any change.
        operation = None if event.operation is Operation.DELETE else event.operation
        taking: list[tuple[SourceTable, str | None]] = []
        for table in source.tables:
            key = map_key(table, row)
            if key is None:
                self._unresolved(source, event, f"map {table.table_map.name} finds no key in the row")
                continue
            stored = self._stored(table, key)
            if table.takes(row):
                taking.append((table, stored))
            elif stored is not None:
                # The row left this map (a filter field changed). The consumer applies a delete to every
                # map of the area, so it goes before the state another map of the area now takes.
                batch.delete(table, key, base_version(row), row)
        for table, stored in taking:
            batch.state(table, row, stored, operation)
        batch.index(source.name, event.row_id, source.index_ref(row))

    def _gone(self, source: FoSource, event: FoDataEvent, values: Values, batch: FoBatch) -> None:
        before = event.pre_image
        base = base_version(before) if before is not None and FO_VERSION_FIELD in before else None
        for table in source.tables:
            key = map_key(table, values)
            if key is None:
                self._unresolved(source, event, f"the key of map {table.table_map.name} is unknown")
            elif self._took(table, key, values):
                named = self._delete_values(table, key, before)
                if event.operation is not Operation.DELETE and any(
                    f not in named for f in table.delete_fields
                ):
                    # A create or update whose row was gone again before it was read, and never published
                    # with the values its delete must carry (dualbus wrote it and deleted it at once): such
                    # a delete could not be applied. The row's own delete event carries them (PreImage).
                    _log.info(
                        "%s: a row gone before it was read, never published: left to its delete", table.name
                    )
                    continue
                batch.delete(table, key, base, named)
        batch.index(source.name, event.row_id, None)

    def _delete_values(self, table: SourceTable, key: dict[str, str | int], before: Values | None) -> Values:
        """What names the gone row on the other side: the PreImage, else what was stored when published."""
        text = key_text(key)
        stored = self._store.delete_data(table.table_map.name, [text]).get(text, {})
        return {**stored, **table.delete_data(before or {})}

    def _took(self, table: SourceTable, key: dict[str, str | int], values: Values) -> bool:
        """Whether the map may hold the row: it published it, or its filter passes on what is known."""
        if self._stored(table, key) is not None:
            return True
        fields = [condition.field for condition in table.table_map.source_filter.fo]
        return not all(name in values for name in fields) or table.takes(values)

    def _stored(self, table: SourceTable, key: dict[str, str | int]) -> str | None:
        text = key_text(key)
        return self._store.digests(table.table_map.name, [text]).get(text)

    def _unresolved(self, source: FoSource, event: FoDataEvent, why: str) -> None:
        self.unresolved += 1
        self._publisher.metrics.unresolved.add(1, {"entity": source.name})
        _log.warning(
            "data event %s (%s of %s row %s) not published: %s; the next scan covers it",
            event.operation_id,
            event.operation.value,
            source.name,
            event.row_id,
            why,
        )

    def _ignore(self, event: FoDataEvent) -> None:
        self.ignored += 1
        if event.event_entity_name not in self._warned:
            self._warned.add(event.event_entity_name)
            _log.warning(
                "data events of %s are not synced by this producer: ignored", event.event_entity_name
            )
