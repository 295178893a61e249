"""The data event webhook and its inbox: WebhookKey authentication, 2xx once the event is kept (400 and 503
otherwise), then published in arrival order, many at a time, again after failures, and after a restart."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest
from pydantic import SecretStr

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_inbox import FoEventInbox
from dualbus.producers.fo_webhook import webhook_app
from dualbus.producers.publisher import Publisher
from dualbus.producers.runner import _serve_webhook
from dualbus.producers.settings import ProducerOptions
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import load_maps
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import default_topology
from tests.unit.producers.contexts import data_event
from tests.unit.producers.fakes import FakeFoReader, RecordingClient, sent_envelopes
from tests.unit.retry_waits import recorded_waits

KEY = "k3y-0f-the-webhook"
ROW = {
    "dataAreaId": "usmf",
    "CustomerAccount": "C-1",
    "OrganizationName": "Fabrikam",
    "PartyType": "Organization",
}
EVENT = orjson.dumps(
    data_event("OnExternalCreated", "CustomersV3", "00004c03-0000-0000-0100-000000000000", ROW)
)


# Publishing again after a failure waits this long (the inbox's backoff), so a test sees it happen.
_AGAIN = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.01, jitter=0.0)
_WITHIN = 5.0


@pytest.fixture
def parts(tmp_path: Path):
    client = RecordingClient(max_bytes=256 * 1024)
    reader = FakeFoReader()
    reader.put("CustomersV3", ROW)
    store = CheckpointStore(tmp_path / "producer-fo.sqlite3")
    handler = FoEventHandler(
        reader,  # type: ignore[arg-type]  # the in-memory rows read like FoReader
        source_tables(load_maps(), Origin.FO, ["customer"]),
        Publisher(client, default_topology()),  # type: ignore[arg-type]
        store,
        VersionClock(store),
        retry=RetryPolicy(attempts=1),
    )
    yield client, reader, FoEventInbox(store, handler, retry=_AGAIN), store
    store.close()


def _http(inbox: FoEventInbox, key: str | None = KEY) -> httpx.AsyncClient:
    app = webhook_app(inbox, key=SecretStr(key) if key else None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook")


@contextlib.asynccontextmanager
async def _publishing(inbox: FoEventInbox) -> AsyncIterator[None]:
    stop = asyncio.Event()
    running = asyncio.create_task(inbox.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(running, _WITHIN)


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(_WITHIN):
        while not condition():  # noqa: ASYNC110 - the inbox is in SQLite: there is no event to wait on
            await asyncio.sleep(0.01)


def _customers(client: RecordingClient) -> list[str]:
    if "dualbus.customer" not in client.senders:
        return []
    return [e.key["CustomerAccount"] for e in sent_envelopes(client, "dualbus.customer")]


@pytest.mark.asyncio
async def test_an_event_is_acknowledged_once_kept_and_then_published(parts) -> None:
    """A valid event with the right code is answered 200 once kept; the inbox then puts its change on the
    customer topic and lets it go."""
    client, _, inbox, store = parts
    async with _http(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT)
    assert response.status_code == 200
    assert response.json() == {"accepted": "4af10637-4ea2-e711-8122-000d3aa2331c"}
    assert len(store.inbox(10)) == 1
    assert _customers(client) == []
    async with _publishing(inbox):
        await _until(lambda: not store.inbox(10))
    assert _customers(client) == ["C-1"]


@pytest.mark.asyncio
async def test_events_kept_by_a_stopped_producer_are_published_by_the_next(parts, tmp_path: Path) -> None:
    """What was kept and not published (the producer killed) is in the store for the next start."""
    client, _, inbox, store = parts
    async with _http(inbox) as http:
        assert (await http.post("/fo/events", params={"code": KEY}, content=EVENT)).status_code == 200
    reopened = CheckpointStore(tmp_path / "producer-fo.sqlite3")
    try:
        assert [body for _, body in reopened.inbox(10)] == [EVENT]
    finally:
        reopened.close()
    async with _publishing(inbox):
        await _until(lambda: not store.inbox(10))
    assert _customers(client) == ["C-1"]


@pytest.mark.asyncio
async def test_events_of_many_rows_go_in_one_read_and_one_publish(parts) -> None:
    """Events that arrived meanwhile are published together: every row read once, the last event standing
    for its row, in arrival order."""
    client, reader, inbox, store = parts
    accounts = {f"C-{n}": f"00004c03-0000-0000-0100-00000000000{n}" for n in range(2, 6)}
    async with _http(inbox) as http:
        for account in [*accounts, "C-2"]:
            row = {**ROW, "CustomerAccount": account}
            reader.put("CustomersV3", row)
            event = data_event("OnExternalUpdated", "CustomersV3", accounts[account], row)
            assert (await http.post("/fo/events", params={"code": KEY}, json=event)).status_code == 200
    reads = reader.reads
    async with _publishing(inbox):
        await _until(lambda: not store.inbox(10))
    assert reader.reads - reads == 1  # the four rows in one request of "or"-ed keys
    assert _customers(client) == ["C-3", "C-4", "C-5", "C-2"]
    assert len(client.get_topic_sender("dualbus.customer").sent) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("params", [{}, {"code": ""}, {"code": "wrong"}, {"code": KEY + "x"}])
async def test_a_missing_or_wrong_code_is_refused(parts, params: dict[str, str]) -> None:
    """Without the WebhookKey, or with another, the answer is 401 and nothing is published."""
    client, _, inbox, store = parts
    async with _http(inbox) as http:
        response = await http.post("/fo/events", params=params, content=EVENT)
    assert response.status_code == 401
    assert store.inbox(10) == []
    assert client.senders == {}


@pytest.mark.asyncio
async def test_without_a_configured_key_events_are_accepted_with_a_warning(
    parts, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint configured without a key warns once when it starts, and takes events."""
    _, _, inbox, _ = parts
    with caplog.at_level(logging.WARNING, logger="dualbus.producers.fo_webhook"):
        http = _http(inbox, key=None)
    assert "without a key" in caplog.text
    caplog.clear()
    async with http:
        for _ in range(2):
            assert (await http.post("/fo/events", content=EVENT)).status_code == 200
    assert "without a key" not in caplog.text


@pytest.mark.asyncio
async def test_unusable_payloads_are_refused(parts) -> None:
    """A body that is not JSON, or not a RemoteExecutionContext, is answered 400 with the reason."""
    _, _, inbox, store = parts
    async with _http(inbox) as http:
        assert (await http.post("/fo/events", params={"code": KEY}, content=b"{nope")).status_code == 400
        response = await http.post("/fo/events", params={"code": KEY}, json={"MessageName": "Assign"})
    assert response.status_code == 400
    assert "MessageName" in response.json()["error"]
    assert store.inbox(10) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("down", ["service bus", "f&o"])
async def test_an_event_kept_while_service_bus_or_f_and_o_is_down_is_published_once_it_is_back(
    parts, down: str
) -> None:
    """The event is taken all the same; publishing it fails and is tried again, the event kept meanwhile,
    until the failing side is back."""
    client, reader, inbox, store = parts
    sender = client.get_topic_sender("dualbus.customer")
    if down == "service bus":
        sender.failing = True
    else:
        reader.failing = True
    async with _http(inbox) as http:
        assert (await http.post("/fo/events", params={"code": KEY}, content=EVENT)).status_code == 200
    with recorded_waits() as waits:
        async with _publishing(inbox):
            await asyncio.wait_for(waits.scheduled.wait(), _WITHIN)
            assert len(store.inbox(10)) == 1
            sender.failing = reader.failing = False
            await _until(lambda: not store.inbox(10))
    assert _customers(client) == ["C-1"]


@pytest.mark.asyncio
async def test_an_event_that_cannot_be_kept_is_answered_503_with_retry_after(parts) -> None:
    """A store that cannot take the event (its disk failing) makes the webhook answer 503 with Retry-After,
    so that Dataverse sends it again."""
    _, _, inbox, store = parts
    store.close()
    async with _http(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.asyncio
async def test_health_lists_the_entities_without_a_key(parts) -> None:
    """The health check needs no code and names the entity sets whose events are taken."""
    _, _, inbox, _ = parts
    async with _http(inbox) as http:
        body = (await http.get("/healthz")).json()
    assert body["status"] == "ok"
    assert sorted(body["entities"]) == ["CustomerGroups", "CustomersV3", "PaymentTerms"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post_until_answered(url: str) -> tuple[int, float]:
    """POST the event (retrying while the server starts); its status and when the answer came."""
    deadline = time.monotonic() + _WITHIN
    while True:
        try:
            answer = httpx.post(url, content=EVENT, params={"code": KEY}, timeout=_WITHIN)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        return answer.status_code, time.monotonic()


@pytest.mark.asyncio
async def test_the_served_webhook_answers_while_the_producers_own_loop_is_busy(parts) -> None:
    """Served by the producer, the webhook runs on a thread of its own: an event taken there wakes the
    inbox on the producer's loop, and an event is kept and answered while that loop is blocked (here by a
    sleep standing in for a long publish)."""
    client, _, inbox, store = parts
    port = _free_port()
    options = ProducerOptions(webhook_port=port, fo_webhook_key=SecretStr(KEY))
    stop = asyncio.Event()
    serving = asyncio.create_task(_serve_webhook(inbox, options, stop))
    url = f"http://127.0.0.1:{port}/fo/events"
    try:
        async with _publishing(inbox):
            status, _ = await asyncio.to_thread(_post_until_answered, url)
            assert status == 200
            await _until(lambda: _customers(client) == ["C-1"])  # woken from the webhook's thread
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                posting = pool.submit(_post_until_answered, url)
                time.sleep(1.0)  # noqa: ASYNC251 - the point: the producer's loop can do nothing meanwhile
                block_ended = time.monotonic()
                status, answered = posting.result(timeout=_WITHIN)
            assert status == 200
            assert answered < block_ended
            await _until(lambda: store.inbox(10) == [])  # and published once the loop is free again
    finally:
        stop.set()
        await asyncio.wait_for(serving, _WITHIN)


@pytest.mark.asyncio
async def test_a_webhook_port_that_is_taken_is_a_one_line_error(parts) -> None:
    _, _, inbox, _ = parts
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        options = ProducerOptions(webhook_port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match=r"could not be served on 127\.0\.0\.1:"):
            await asyncio.wait_for(_serve_webhook(inbox, options, asyncio.Event()), _WITHIN)
