"""F&O data events: parse the payload, build full-state envelopes, publish; the caller acknowledges after.

A data event is a business-event envelope (``BusinessEventId``, ``EventId``, ``EventTimeIso8601``,
``InitiatingUserAADObjectId``, ...) carrying the entity record; the twin and dualbus also read
``EntityName`` and ``ChangeType`` (``Create`` | ``Update`` | ``Delete``).
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/data-events

A create or update is published with the record's full state: the payload's when it carries the row's
``ModifiedDateTime`` (the version mark), otherwise the row read back by key. A delete carries the key and
takes the event time as its version, which is after the row's last change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from producers.errors import SourceError
from producers.events import EchoFilter, build_envelope, fo_version, parse_time
from producers.flow import Backoff, publish_then_checkpoint
from producers.fo_reader import FoReader
from producers.publisher import Publisher
from producers.tables import SourceTable
from shared.envelope import Envelope, Operation, Origin
from shared.errors import DualbusError

__all__ = ["DataEvent", "FoEventHandler", "parse_data_event"]

_ENVELOPE_FIELDS = frozenset(
    {
        "BusinessEventId",
        "BusinessEventLegalEntity",
        "ContextRecordSubject",
        "ControlNumber",
        "EventId",
        "EventTime",
        "EventTimeIso8601",
        "InitiatingUserAADObjectId",
        "MajorVersion",
        "MinorVersion",
        "ParentContextRecordSubjects",
        "EntityName",
        "ChangeType",
        "ChangedFields",
    }
)
_OPERATIONS = {"create": Operation.CREATE, "update": Operation.UPDATE, "delete": Operation.DELETE}


@dataclass(frozen=True, slots=True)
class DataEvent:
    """One parsed data event: which entity, what happened, the record, when and by whom."""

    event_id: str
    entity: str
    operation: Operation
    record: dict[str, Any]
    time: Any  # datetime; Any keeps the dataclass free of a parse at construction
    initiating_user: str | None


def parse_data_event(payload: object) -> DataEvent:
    """Read one data event payload; SourceError says what is missing or malformed."""
    if not isinstance(payload, Mapping):
        raise SourceError(f"a data event is a JSON object, not a {type(payload).__name__}")
    entity, change = _entity_and_change(payload)
    operation = _OPERATIONS.get(change.lower())
    if operation is None:
        raise SourceError(f"data event change type {change!r} is not Create, Update or Delete")
    try:
        moment = parse_time(payload.get("EventTimeIso8601"))
    except DualbusError as exc:
        raise SourceError(f"data event of {entity} has no valid EventTimeIso8601") from exc
    record = {name: value for name, value in payload.items() if name not in _ENVELOPE_FIELDS}
    user = payload.get("InitiatingUserAADObjectId")
    return DataEvent(
        event_id=str(payload.get("EventId", "")),
        entity=entity,
        operation=operation,
        record=record,
        time=moment,
        initiating_user=str(user) if user else None,
    )


def _entity_and_change(payload: Mapping[str, Any]) -> tuple[str, str]:
    entity, change = payload.get("EntityName"), payload.get("ChangeType")
    if isinstance(entity, str) and isinstance(change, str) and entity and change:
        return entity, change
    # Without the twin's extra fields, the business event id reads "<entity>_<ChangeType>".
    event = str(payload.get("BusinessEventId", ""))
    name, _, kind = event.rpartition("_")
    if not name or not kind:
        raise SourceError(f"cannot tell the entity and change type of data event {event!r}")
    return name.removeprefix("DataEvent_"), kind


class FoEventHandler:
    """Turns data events into envelopes and publishes them; returns only once they are on the bus."""

    def __init__(
        self,
        reader: FoReader,
        tables: Iterable[SourceTable],
        publisher: Publisher,
        echo: EchoFilter,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self._reader = reader
        self._tables: dict[str, list[SourceTable]] = {}
        for table in tables:
            self._tables.setdefault(table.name, []).append(table)
        self._publisher = publisher
        self._echo = echo
        self._backoff = backoff or Backoff()
        self.skipped_echo = 0
        self.ignored = 0

    @property
    def entities(self) -> tuple[str, ...]:
        """The F&O entities whose events this handler publishes."""
        return tuple(self._tables)

    async def handle(self, payloads: Sequence[object]) -> int:
        """Publish the events' changes; SourceError for a malformed payload, TransientError to retry."""
        events = [parse_data_event(payload) for payload in payloads]
        envelopes: list[Envelope] = []
        for event in events:
            for table in self._tables.get(event.entity, []):
                envelope = await self._envelope(table, event)
                if envelope is not None:
                    envelopes.append(envelope)
            if event.entity not in self._tables:
                self.ignored += 1
        await publish_then_checkpoint(self._publisher, None, envelopes, {}, backoff=self._backoff)
        return len(envelopes)

    async def _envelope(self, table: SourceTable, event: DataEvent) -> Envelope | None:
        if event.operation is Operation.DELETE:
            # Deletes are published even when dualbus made them. A delete that won a race against an older
            # update from the other side must reach that side too, or the update would have re-created the
            # row there for good; on a side that lacks the row already, a delete changes nothing.
            key = table.key_of(event.record)
            version = fo_version(event.time)
            return build_envelope(
                table, {}, Operation.DELETE, source_version=version, time=event.time, key=key
            )
        row = event.record if "ModifiedDateTime" in event.record else await self._current(table, event)
        if row is None or not table.takes(row):
            # Gone since (its delete event follows) or not a row this map takes.
            return None
        if self._echo.is_echo(Origin.FO, row):
            self._skip(table)
            return None
        modified = row["ModifiedDateTime"]
        return build_envelope(
            table, row, event.operation, source_version=fo_version(modified), time=parse_time(modified)
        )

    async def _current(self, table: SourceTable, event: DataEvent) -> dict[str, Any] | None:
        key = {name: event.record[name] for name in table.key_fields if name in event.record}
        if len(key) != len(table.key_fields):
            raise SourceError(f"data event {event.event_id} of {event.entity} lacks key fields")
        return await self._reader.row(table.name, key)

    def _skip(self, table: SourceTable) -> None:
        self.skipped_echo += 1
        self._publisher.metrics.skipped_echo.add(1, {"area": table.area})
