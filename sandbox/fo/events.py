"""F&O data events: each committed change of an activated entity, delivered to its endpoints in commit order.

Data events are activated per entity and bound to an endpoint (an HTTPS endpoint, which Dataverse calls as a
webhook, or a Service Bus queue or topic); each event is a RemoteExecutionContext (sandbox/fo/context.py).
Events wait in a bounded queue for F&O's "Processing threads" (at most 4), each of which takes the next
event and delivers it (F&O's "Bundle size", how many events a thread takes at once, is not modelled: one).
With one thread every event goes in commit order; with more, events go side by side and a record's events
may overtake each other, as F&O warns consumers (its control number exists to tell). The twin's default
is one thread: F&O documents none. A failed send is retried F&O's documented default number of
times (3) with its default wait between retries (1000 ms), then given up and counted, as F&O moves it to
its error log (business events parameters, General and Performance):
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/6207b09ba92b314d8517412240d9b9c380708c8c/articles/fin-ops-core/dev-itpro/business-events/home-page.md
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from dualbus.d365 import FoEntity
from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.fo.context import DEFAULT_ORGANIZATION, Organization, data_event_payload
from dualbus.sandbox.fo.entities import ENTITIES
from dualbus.sandbox.fo.store import Change, FoStore

__all__ = [
    "MAX_PROCESSING_THREADS",
    "Delivery",
    "DeliveryError",
    "DeliveryStats",
    "EventEndpoint",
    "EventPublisher",
]

_log = logging.getLogger(__name__)
_STOP = object()
DEFAULT_RETRIES = 3
DEFAULT_RETRY_WAIT_SECONDS = 1.0
MAX_PROCESSING_THREADS = 4


class DeliveryError(SandboxError):
    """An endpoint did not accept an event; the publisher retries it."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to send: its JSON body and what a transport puts beside it (headers, message id)."""

    body: bytes
    operation_id: str
    correlation_id: str
    message_name: str
    entity_name: str
    organization: str

    @classmethod
    def of(cls, payload: dict[str, Any], organization: Organization) -> Delivery:
        """The delivery of a RemoteExecutionContext."""
        return cls(
            body=orjson.dumps(payload),
            operation_id=payload["OperationId"],
            correlation_id=payload["CorrelationId"],
            message_name=payload["MessageName"],
            entity_name=payload["PrimaryEntityName"],
            organization=organization.domain,
        )


class EventEndpoint(Protocol):
    """Somewhere data events go: a webhook, a Service Bus queue or topic."""

    name: str

    def send(self, delivery: Delivery) -> None:
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


class EventPublisher:
    """Turns committed changes of activated entities into events and delivers them from its threads."""

    def __init__(
        self,
        store: FoStore,
        *,
        organization: Organization = DEFAULT_ORGANIZATION,
        retries: int = DEFAULT_RETRIES,
        retry_wait_seconds: float = DEFAULT_RETRY_WAIT_SECONDS,
        processing_threads: int = 1,
        queue_size: int = 10_000,
        enqueue_timeout: float = 5.0,
        entities: Mapping[str, FoEntity] = ENTITIES,
    ) -> None:
        """``entities`` are the ones the tenant has, as its events describe them (sandbox/fo/entities.py)."""
        if not 1 <= processing_threads <= MAX_PROCESSING_THREADS:
            most = MAX_PROCESSING_THREADS
            raise SandboxError(f"processing threads must be 1 to {most}, not {processing_threads}")
        self._bindings: list[tuple[EventEndpoint, frozenset[str]]] = []
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._organization = organization
        self._entities = entities
        self._retries = retries
        self._retry_wait = retry_wait_seconds
        self._enqueue_timeout = enqueue_timeout
        self._stopping = threading.Event()
        self._counting = threading.Lock()
        self.stats = DeliveryStats()
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name=f"fo-data-events-{n}")
            for n in range(processing_threads)
        ]
        for thread in self._threads:
            thread.start()
        store.subscribe(self._on_change)

    def add_endpoint(self, endpoint: EventEndpoint, entities: Iterable[str]) -> None:
        """Activate data events of ``entities`` (entity sets like ``CustomersV3``) on ``endpoint``."""
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
        """Stop the threads (after what is queued, within ``timeout``) and close the endpoints."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        try:
            for _ in self._threads:
                self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            _log.warning("data event queue still full at shutdown; pending events are dropped")
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
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
                payload = data_event_payload(change, self._organization, entities=self._entities)
                delivery = Delivery.of(payload, self._organization)
                for endpoint in targets:
                    self._deliver(endpoint, delivery)
            finally:
                self._queue.task_done()

    def _deliver(self, endpoint: EventEndpoint, delivery: Delivery) -> None:
        for attempt in range(1 + self._retries):
            self._count(self.stats.attempts, endpoint.name)
            try:
                endpoint.send(delivery)
            except DeliveryError as exc:
                _log.info("data event %s to %s failed: %s", delivery.operation_id, endpoint.name, exc)
                if attempt == self._retries or self._stopping.wait(self._retry_wait):
                    break
                continue
            except Exception:  # noqa: BLE001 - a bug in an endpoint must not end the thread
                # The event goes to the error log, as F&O's would, and the thread takes the next one.
                _log.exception("data event %s to %s failed", delivery.operation_id, endpoint.name)
                break
            self._count(self.stats.delivered, endpoint.name)
            return
        self._count(self.stats.given_up, endpoint.name)

    def _count(self, counts: dict[str, int], name: str) -> None:
        with self._counting:
            counts[name] = counts.get(name, 0) + 1
