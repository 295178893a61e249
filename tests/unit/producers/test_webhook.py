"""The data event webhook answers 2xx only once the change is published."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest

from producers.events import EchoFilter
from producers.flow import Backoff
from producers.fo_events import FoEventHandler
from producers.fo_webhook import webhook_app
from producers.publisher import Publisher
from producers.tables import source_tables
from sandbox.fo.events import data_event_payload
from sandbox.fo.store import Change
from sandbox.identity import user_id_for
from shared.envelope import Origin
from shared.maps import load_maps
from shared.topology import default_topology
from tests.unit.producers.fakes import RecordingClient


def _payload(modified_by: str = "someone", change_type: str = "Create") -> dict[str, object]:
    row = {
        "dataAreaId": "usmf",
        "CustomerAccount": "C-1",
        "OrganizationName": "Fabrikam",
        "PartyType": "Organization",
        "ModifiedDateTime": "2026-01-02T03:04:05.000006Z",
        "ModifiedBy": modified_by,
    }
    change = Change(
        entity="CustomersV3",
        change_type=change_type,
        keys={"dataAreaId": "usmf", "CustomerAccount": "C-1"},
        row=row,
        changed_fields=(),
        sequence=1,
        time=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        modified_by=modified_by,
    )
    return data_event_payload(change)


def _app(client: RecordingClient) -> tuple[httpx.AsyncClient, FoEventHandler]:
    tables = source_tables(load_maps(), Origin.FO, ["customer"])
    publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
    handler = FoEventHandler(
        None,  # type: ignore[arg-type]  # payloads carry ModifiedDateTime: nothing is read back
        tables,
        publisher,
        EchoFilter.of("dualbus"),
        backoff=Backoff(attempts=1),
    )
    transport = httpx.ASGITransport(app=webhook_app(handler))
    return httpx.AsyncClient(transport=transport, base_url="http://webhook"), handler


@pytest.mark.asyncio
async def test_event_is_acknowledged_after_it_is_published() -> None:
    """A valid event is answered 200 and its envelope is on the customer topic."""
    client = RecordingClient(max_bytes=256 * 1024)
    http, _ = _app(client)
    async with http:
        response = await http.post("/fo/events", content=orjson.dumps(_payload()))
    assert response.status_code == 200
    assert response.json() == {"published": 1}
    assert len(client.senders["dualbus.customer"].sent) == 1


@pytest.mark.asyncio
async def test_publish_failure_is_not_acknowledged() -> None:
    """While Service Bus is down the webhook answers 503 with Retry-After, so F&O sends the event again."""
    client = RecordingClient(max_bytes=256 * 1024)
    client.get_topic_sender("dualbus.customer").failing = True
    http, _ = _app(client)
    async with http:
        response = await http.post("/fo/events", content=orjson.dumps(_payload()))
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.asyncio
async def test_unusable_payloads_are_refused() -> None:
    """A body that is not JSON, or not a data event, is answered 400."""
    http, _ = _app(RecordingClient(max_bytes=256 * 1024))
    async with http:
        assert (await http.post("/fo/events", content=b"{nope")).status_code == 400
        assert (await http.post("/fo/events", json={"hello": "world"})).status_code == 400


@pytest.mark.asyncio
async def test_echo_is_acknowledged_but_not_published() -> None:
    """dualbus's own write is answered 200, counted as skipped, and nothing is sent."""
    client = RecordingClient(max_bytes=256 * 1024)
    http, handler = _app(client)
    async with http:
        response = await http.post("/fo/events", content=orjson.dumps(_payload(modified_by="dualbus")))
    assert response.json() == {"published": 0}
    assert handler.skipped_echo == 1
    assert "dualbus.customer" not in client.senders or not client.senders["dualbus.customer"].sent


@pytest.mark.asyncio
async def test_deletes_are_published_even_when_dualbus_made_them() -> None:
    """A delete is never an echo: one dualbus made must still reach the other side (docs/processing.md)."""
    client = RecordingClient(max_bytes=256 * 1024)
    tables = source_tables(load_maps(), Origin.FO, ["customer"])
    handler = FoEventHandler(
        None,  # type: ignore[arg-type]  # deletes read nothing back
        tables,
        Publisher(client, default_topology()),  # type: ignore[arg-type]
        EchoFilter.of("dualbus", user_id_for("dualbus")),
        backoff=Backoff(attempts=1),
    )
    assert await handler.handle([_payload(modified_by="dualbus", change_type="Delete")]) == 1
    assert handler.skipped_echo == 0
    assert await handler.handle([_payload(modified_by="workload", change_type="Delete")]) == 1
