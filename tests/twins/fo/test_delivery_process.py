"""Data events delivered from a process of their own: in commit order with one thread, F&O's retries, the
counts back in the twin's stats, and the process gone after close."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from dualbus.sandbox.fo.endpoints import WebhookEndpoint
from dualbus.sandbox.fo.events import EventPublisher
from dualbus.sandbox.fo.store import FoStore

_WAIT = 30.0  # the child is a new interpreter: its imports come first


class _Receiver(ThreadingHTTPServer):
    """A webhook on loopback: records each event's message name and key header, answers ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.received: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/events"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((orjson.loads(body)["MessageName"], self.headers.get("x-key")))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def store() -> Iterator[FoStore]:
    store = FoStore(None)
    yield store
    store.close()


def _serving(status: int) -> _Receiver:
    receiver = _Receiver(status)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    return receiver


def test_a_child_process_delivers_in_commit_order_with_the_endpoints_headers(store: FoStore) -> None:
    receiver = _serving(200)
    publisher = EventPublisher(store, separate_process=True, retry_wait_seconds=0.01)
    publisher.add_endpoint(
        WebhookEndpoint(receiver.url, headers={"x-key": "k1"}, name="hook"), ["Currencies"]
    )
    try:
        store.insert("Currencies", {"CurrencyCode": "EUR", "Name": "Euro"}, modified_by="dualbus")
        store.update("Currencies", ("EUR",), {"Name": "Euro (EMU)"}, modified_by="dualbus")
        store.delete("Currencies", ("EUR",), modified_by="dualbus")
        assert publisher.flush(timeout=_WAIT)
        assert "fo-data-events" in {child.name for child in multiprocessing.active_children()}
    finally:
        publisher.close(timeout=_WAIT)
        receiver.shutdown()
        receiver.server_close()
    names = [name for name, _ in receiver.received]
    assert names == ["OnExternalCreated", "OnExternalUpdated", "OnExternalDeleted"]
    assert {key for _, key in receiver.received} == {"k1"}
    assert publisher.stats.delivered == {"hook": 3}
    assert publisher.stats.attempts == {"hook": 3}
    assert "fo-data-events" not in {child.name for child in multiprocessing.active_children()}


def test_a_refusing_webhook_is_retried_in_the_child_then_given_up_and_counted(store: FoStore) -> None:
    receiver = _serving(500)
    publisher = EventPublisher(store, separate_process=True, retries=2, retry_wait_seconds=0.01)
    publisher.add_endpoint(WebhookEndpoint(receiver.url, name="down"), ["Currencies"])
    try:
        store.insert("Currencies", {"CurrencyCode": "GBP", "Name": "Pound"}, modified_by="dualbus")
        assert publisher.flush(timeout=_WAIT)
    finally:
        publisher.close(timeout=_WAIT)
        receiver.shutdown()
        receiver.server_close()
    assert len(receiver.received) == 3
    assert publisher.stats.attempts == {"down": 3}
    assert publisher.stats.given_up == {"down": 1}
    assert publisher.stats.delivered == {}


def test_no_process_starts_while_no_event_has_an_endpoint(store: FoStore) -> None:
    publisher = EventPublisher(store, separate_process=True)
    store.insert("Currencies", {"CurrencyCode": "USD", "Name": "Dollar"}, modified_by="dualbus")
    try:
        assert publisher.flush(timeout=1.0)
        assert "fo-data-events" not in {child.name for child in multiprocessing.active_children()}
    finally:
        publisher.close()
