"""F&O data events: create/update/delete notifications for chosen entities, delivered to endpoints.

Data events are activated per entity and bound to an endpoint (an HTTPS webhook, a Service Bus queue or
topic, ...). The payload is a business-event envelope (BusinessEventId, BusinessEventLegalEntity,
ControlNumber, EventId, EventTime, EventTimeIso8601, InitiatingUserAADObjectId, MajorVersion, MinorVersion,
...) carrying the entity record.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/data-events and
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints

The twin names each event ``<entity>_<ChangeType>`` and adds ``EntityName``, ``ChangeType`` and, for updates,
``ChangedFields``, so that a consumer need not guess what changed. One worker thread delivers events from a
bounded queue in commit order, retrying a failing endpoint with exponential back-off before moving on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from sandbox.errors import SandboxError
from sandbox.fo.store import Change, FoStore
from sandbox.identity import user_id_for

__all__ = ["DeliveryError", "DeliveryStats", "EventEndpoint", "EventPublisher", "data_event_payload"]

_log = logging.getLogger(__name__)
_STOP = object()


class DeliveryError(SandboxError):
    """An endpoint did not accept an event; the publisher retries it."""


class EventEndpoint(Protocol):
    """Somewhere data events go: a webhook, a Service Bus queue or topic."""

    name: str

    def send(self, payload: bytes, *, event_id: str) -> None:
        """Deliver one event or raise DeliveryError."""

    def close(self) -> None:
        """Release connections."""


@dataclass(slots=True)
class DeliveryStats:
    """What the publisher did, per endpoint name."""

    delivered: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    given_up: dict[str, int] = field(default_factory=dict)
    dropped: int = 0


def _dotnet_date(change: Change) -> str:
    return f"/Date({int(change.time.timestamp() * 1000)})/"


def data_event_payload(change: Change) -> dict[str, Any]:
    """The JSON document sent for one change: the business-event envelope plus the entity record."""
    record = change.keys if change.change_type == "Delete" else change.row
    record = {name: value for name, value in record.items() if not name.startswith("@odata.")}
    company = str(change.row.get("dataAreaId", "")).upper()
    payload: dict[str, Any] = {
        "BusinessEventId": f"{change.entity}_{change.change_type}",
        "BusinessEventLegalEntity": company,
        "ContextRecordSubject": "",
        "ControlNumber": change.sequence,
        "EventId": str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"fo-data-event:{change.sequence}:{change.time}")
        ).upper(),
        "EventTime": _dotnet_date(change),
        "EventTimeIso8601": change.time.isoformat().replace("+00:00", "Z"),
        "InitiatingUserAADObjectId": user_id_for(change.modified_by),
        "MajorVersion": 0,
        "MinorVersion": 0,
        "ParentContextRecordSubjects": [],
        "EntityName": change.entity,
        "ChangeType": change.change_type,
        **record,
    }
    if change.change_type == "Update":
        payload["ChangedFields"] = list(change.changed_fields)
    return payload


class EventPublisher:
    """Turns committed changes of activated entities into events and delivers them from one thread."""

    def __init__(
        self,
        store: FoStore,
        *,
        queue_size: int = 10_000,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        enqueue_timeout: float = 5.0,
    ) -> None:
        self._bindings: list[tuple[EventEndpoint, frozenset[str]]] = []
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._enqueue_timeout = enqueue_timeout
        self._stopping = threading.Event()
        self.stats = DeliveryStats()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fo-data-events")
        self._thread.start()
        store.subscribe(self._on_change)

    def add_endpoint(self, endpoint: EventEndpoint, entities: Iterable[str]) -> None:
        """Activate data events of ``entities`` (names like ``CustomersV3``) on ``endpoint``."""
        self._bindings.append((endpoint, frozenset(entities)))

    def bindings(self) -> list[tuple[str, list[str]]]:
        """Each endpoint's name with the entities activated on it."""
        return [(endpoint.name, sorted(entities)) for endpoint, entities in self._bindings]

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event has been delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (after what is queued, within ``timeout``) and close the endpoints."""
        self._stopping.set()
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            _log.warning("data event queue still full at shutdown; pending events are dropped")
        self._thread.join(timeout=timeout)
        for endpoint, _ in self._bindings:
            endpoint.close()

    def _on_change(self, change: Change) -> None:
        targets = [ep for ep, entities in self._bindings if change.entity in entities]
        if not targets:
            return
        try:
            # Bounded: a dead endpoint slows writers down for a while instead of growing memory for ever.
            self._queue.put((change, targets), timeout=self._enqueue_timeout)
        except queue.Full:
            self.stats.dropped += 1
            _log.warning("data event queue full; event %s of %s dropped", change.sequence, change.entity)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                change, targets = item
                payload = data_event_payload(change)
                body = orjson.dumps(payload)
                for endpoint in targets:
                    self._deliver(endpoint, body, payload["EventId"])
            finally:
                self._queue.task_done()

    def _deliver(self, endpoint: EventEndpoint, body: bytes, event_id: str) -> None:
        delay = self._backoff
        for attempt in range(1, self._max_attempts + 1):
            self.stats.attempts[endpoint.name] = self.stats.attempts.get(endpoint.name, 0) + 1
            try:
                endpoint.send(body, event_id=event_id)
            except DeliveryError as exc:
                _log.info(
                    "data event %s to %s failed (attempt %d): %s", event_id, endpoint.name, attempt, exc
                )
                if attempt == self._max_attempts or self._stopping.wait(delay):
                    break
                delay = min(delay * 2, self._max_backoff)
                continue
            self.stats.delivered[endpoint.name] = self.stats.delivered.get(endpoint.name, 0) + 1
            return
        self.stats.given_up[endpoint.name] = self.stats.given_up.get(endpoint.name, 0) + 1
