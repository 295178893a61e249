"""The data event webhook: WebhookKey authentication, 2xx only once published, 400 and 503 otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import orjson
import pytest
from pydantic import SecretStr

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_webhook import webhook_app
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import default_topology
from tests.unit.producers.contexts import data_event
from tests.unit.producers.fakes import FakeFoReader, RecordingClient, sent_envelopes

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
    yield client, reader, handler
    store.close()


def _http(handler: FoEventHandler, key: str | None = KEY) -> httpx.AsyncClient:
    app = webhook_app(handler, key=SecretStr(key) if key else None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook")


@pytest.mark.asyncio
async def test_event_is_acknowledged_after_it_is_published(parts) -> None:
    """A valid event with the right code is answered 200, and its change is on the customer topic by then."""
    client, _, handler = parts
    async with _http(handler) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT)
    assert response.status_code == 200
    assert response.json() == {"published": 1}
    assert [e.key["CustomerAccount"] for e in sent_envelopes(client, "dualbus.customer")] == ["C-1"]


@pytest.mark.asyncio
@pytest.mark.parametrize("params", [{}, {"code": ""}, {"code": "wrong"}, {"code": KEY + "x"}])
async def test_a_missing_or_wrong_code_is_refused(parts, params: dict[str, str]) -> None:
    """Without the WebhookKey, or with another, the answer is 401 and nothing is published."""
    client, _, handler = parts
    async with _http(handler) as http:
        response = await http.post("/fo/events", params=params, content=EVENT)
    assert response.status_code == 401
    assert client.senders == {}


@pytest.mark.asyncio
async def test_without_a_configured_key_events_are_accepted_with_a_warning(
    parts, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint configured without a key warns once when it starts, and takes events."""
    _, _, handler = parts
    with caplog.at_level(logging.WARNING, logger="dualbus.producers.fo_webhook"):
        http = _http(handler, key=None)
    assert "without a key" in caplog.text
    caplog.clear()
    async with http:
        for _ in range(2):
            assert (await http.post("/fo/events", content=EVENT)).status_code == 200
    assert "without a key" not in caplog.text


@pytest.mark.asyncio
async def test_unusable_payloads_are_refused(parts) -> None:
    """A body that is not JSON, or not a RemoteExecutionContext, is answered 400 with the reason."""
    _, _, handler = parts
    async with _http(handler) as http:
        assert (await http.post("/fo/events", params={"code": KEY}, content=b"{nope")).status_code == 400
        response = await http.post("/fo/events", params={"code": KEY}, json={"MessageName": "Assign"})
    assert response.status_code == 400
    assert "MessageName" in response.json()["error"]


@pytest.mark.asyncio
async def test_service_bus_down_is_answered_503_with_retry_after(parts) -> None:
    """While Service Bus is down the webhook answers 503 with Retry-After, so Dataverse sends again."""
    client, _, handler = parts
    client.get_topic_sender("dualbus.customer").failing = True
    async with _http(handler) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.asyncio
async def test_f_and_o_down_is_answered_503_with_retry_after(parts) -> None:
    """While the row cannot be read from F&O the webhook answers 503 too."""
    _, reader, handler = parts
    reader.failing = True
    async with _http(handler) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.asyncio
async def test_health_lists_the_entities_without_a_key(parts) -> None:
    """The health check needs no code and names the entity sets whose events are taken."""
    _, _, handler = parts
    async with _http(handler) as http:
        body = (await http.get("/healthz")).json()
    assert body["status"] == "ok"
    assert sorted(body["entities"]) == ["CustomerGroups", "CustomersV3", "PaymentTerms"]
