"""The twin's webhook sender keeps one connection per thread and gets over the server closing it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.fo.endpoints import WebhookEndpoint
from dualbus.sandbox.fo.events import Delivery, DeliveryError

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
# What the server does with each request it reads, in order: answer, answer and close, or close unanswered.
Step = str


@dataclass
class _Server:
    """A raw loopback HTTP server: reads whole requests, does what ``steps`` say, counts connections."""

    steps: list[Step]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    sock: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook?source=fo"

    def serve(self) -> None:
        while self.steps:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed at the test's end with steps left over
            self.connections += 1
            with conn:
                self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        while self.steps:
            request = _read_request(conn)
            if request is None:
                return
            self.requests.append(request)
            step = self.steps.pop(0)
            if step != "close-unanswered":
                conn.sendall(_OK)
            if step != "answer":
                return


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head


@pytest.fixture
def serving() -> Iterator[Callable[[list[Step]], _Server]]:
    started: list[tuple[_Server, threading.Thread]] = []

    def start(steps: list[Step]) -> _Server:
        server = _Server(steps)
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.sock.close()
        thread.join(timeout=5)


def _delivery(n: int) -> Delivery:
    return Delivery(
        body=b'{"n": %d}' % n,
        operation_id=f"op-{n}",
        correlation_id=f"corr-{n}",
        message_name="OnExternalUpdated",
        entity_name="mserp_custcustomerv3entity",
        organization="org.example",
    )


def test_one_connection_carries_every_event_with_the_code_beside_the_urls_own_query(
    serving: Callable[[list[Step]], _Server],
) -> None:
    server = serving(["answer", "answer", "answer"])
    endpoint = WebhookEndpoint(server.url, code="k3y")
    for n in range(3):
        endpoint.send(_delivery(n))
    endpoint.close()
    assert server.connections == 1
    assert [r.split(b" ")[1] for r in server.requests] == [b"/hook?source=fo&code=k3y"] * 3


def test_a_kept_connection_the_server_closed_while_idle_is_replaced_before_the_next_event(
    serving: Callable[[list[Step]], _Server],
) -> None:
    server = serving(["answer-and-close", "answer"])
    endpoint = WebhookEndpoint(server.url)
    endpoint.send(_delivery(1))
    endpoint.send(_delivery(2))
    endpoint.close()
    assert server.connections == 2
    assert len(server.requests) == 2


def test_a_kept_connection_closed_as_the_event_went_sends_it_once_more_on_a_new_one(
    serving: Callable[[list[Step]], _Server],
) -> None:
    server = serving(["answer", "close-unanswered", "answer"])
    endpoint = WebhookEndpoint(server.url)
    endpoint.send(_delivery(1))
    endpoint.send(_delivery(2))
    endpoint.close()
    assert server.connections == 2
    assert len(server.requests) == 3


def test_a_new_connection_closed_unanswered_is_a_failed_delivery(
    serving: Callable[[list[Step]], _Server],
) -> None:
    server = serving(["close-unanswered"])
    endpoint = WebhookEndpoint(server.url)
    with pytest.raises(DeliveryError, match="closed the connection"):
        endpoint.send(_delivery(1))
    endpoint.close()
    assert len(server.requests) == 1


def test_an_event_sent_after_the_endpoint_closed_fails_and_opens_nothing(
    serving: Callable[[list[Step]], _Server],
) -> None:
    server = serving(["answer", "answer"])
    endpoint = WebhookEndpoint(server.url)
    endpoint.send(_delivery(1))
    endpoint.close()
    with pytest.raises(DeliveryError, match="closed"):
        endpoint.send(_delivery(2))
    assert (server.connections, len(server.requests)) == (1, 1)


def test_a_key_in_the_webhook_url_is_in_no_name_and_no_delivery_error() -> None:
    """The producer takes its key as ?code=<key>, so an operator may paste it into the URL: the endpoint's
    name (listed by the twin's admin API, in delivery errors and logs) leaves the query and user info out."""
    with socket.create_server(("127.0.0.1", 0)) as refusing:
        port = refusing.getsockname()[1]
    endpoint = WebhookEndpoint(f"http://user:pw@127.0.0.1:{port}/fo/events?code=url-key-secret", timeout=2)
    try:
        assert endpoint.name == f"http://127.0.0.1:{port}/fo/events"
        with pytest.raises(DeliveryError) as failed:
            endpoint.send(Delivery(b"{}", "op", "corr", "Update", "CustomersV3", "org"))
        assert "url-key-secret" not in str(failed.value)
        assert "pw@" not in str(failed.value)
    finally:
        endpoint.close()


def test_a_webhook_named_from_an_ipv6_url_keeps_its_brackets_and_a_bad_url_is_refused() -> None:
    """The name keeps the host as given; a URL that is no http(s) one is the twin's error, not ValueError."""
    endpoint = WebhookEndpoint("http://[::1]:8123/hook?code=k")
    try:
        assert endpoint.name == "http://[::1]:8123/hook"
    finally:
        endpoint.close()
    with pytest.raises(SandboxError):
        WebhookEndpoint("ftp://h:abc/x")
