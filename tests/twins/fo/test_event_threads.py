"""F&O's business events "Processing threads": events delivered side by side by up to four threads.

https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/6207b09ba92b314d8517412240d9b9c380708c8c/articles/fin-ops-core/dev-itpro/business-events/home-page.md
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.fo.events import Delivery, EventPublisher
from dualbus.sandbox.fo.store import FoStore

_WAIT = 10.0


class _Endpoint:
    """Records what it was sent, by whom; ``gate``, when set, holds every send until as many wait at once."""

    name = "recorder"

    def __init__(self, gate: threading.Barrier | None = None) -> None:
        self.gate = gate
        self.sent: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> None:
        if self.gate is not None:
            self.gate.wait(timeout=_WAIT)  # BrokenBarrierError unless the others are sending at the same time
        with self._lock:
            self.sent.append((threading.current_thread().name, delivery.message_name))

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def store() -> Iterator[FoStore]:
    store = FoStore(None)
    yield store
    store.close()


def _publisher(store: FoStore, endpoint: _Endpoint, **options: int) -> EventPublisher:
    publisher = EventPublisher(store, retry_wait_seconds=0.001, **options)
    publisher.add_endpoint(endpoint, ["Currencies"])
    return publisher


def _change_currencies(store: FoStore, count: int) -> None:
    for n in range(count):
        row = {"CurrencyCode": f"C{n:02}", "Name": f"Currency {n}"}
        store.insert("Currencies", row, modified_by="dualbus")


def test_processing_threads_deliver_side_by_side(store: FoStore) -> None:
    """With four threads, four events are sent at the same moment (one thread would wait at the gate)."""
    endpoint = _Endpoint(gate=threading.Barrier(4))
    publisher = _publisher(store, endpoint, processing_threads=4)
    _change_currencies(store, 4)
    assert publisher.flush(timeout=_WAIT)
    publisher.close()
    assert len(endpoint.sent) == 4
    assert len({thread for thread, _ in endpoint.sent}) == 4
    assert publisher.stats.delivered == {"recorder": 4}
    assert publisher.stats.given_up == {}


def test_one_thread_delivers_in_commit_order(store: FoStore) -> None:
    """The default, one thread: every event goes from it, in the order the changes were committed."""
    endpoint = _Endpoint()
    publisher = _publisher(store, endpoint)
    store.insert("Currencies", {"CurrencyCode": "EUR", "Name": "Euro"}, modified_by="dualbus")
    store.update("Currencies", ("EUR",), {"Name": "Euro (EMU)"}, modified_by="dualbus")
    store.delete("Currencies", ("EUR",), modified_by="dualbus")
    assert publisher.flush(timeout=_WAIT)
    publisher.close()
    names = [name for _, name in endpoint.sent]
    assert names == ["OnExternalCreated", "OnExternalUpdated", "OnExternalDeleted"]
    assert len({thread for thread, _ in endpoint.sent}) == 1


@pytest.mark.parametrize("threads", [0, 5])
def test_processing_threads_are_one_to_four(store: FoStore, threads: int) -> None:
    """F&O allows at most four processing threads; the twin refuses what F&O would."""
    with pytest.raises(SandboxError, match="processing threads must be 1 to 4"):
        EventPublisher(store, processing_threads=threads)


def test_an_endpoint_failing_unexpectedly_costs_its_event_not_the_thread(store: FoStore) -> None:
    """An endpoint's bug on one event gives that event up; the thread goes on with the next."""
    endpoint = _Endpoint()
    original = endpoint.send

    def first_breaks(delivery: Delivery) -> None:
        if not endpoint.sent and not getattr(endpoint, "broke", False):
            endpoint.broke = True  # type: ignore[attr-defined]
            raise RuntimeError("a bug in the endpoint")
        original(delivery)

    endpoint.send = first_breaks  # type: ignore[method-assign]
    publisher = _publisher(store, endpoint)
    _change_currencies(store, 2)
    assert publisher.flush(timeout=_WAIT)
    publisher.close()
    assert len(endpoint.sent) == 1
    assert publisher.stats.given_up == {"recorder": 1}
    assert publisher.stats.delivered == {"recorder": 1}
