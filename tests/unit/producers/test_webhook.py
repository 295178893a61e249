"""The data event webhook and its inbox: WebhookKey authentication, 2xx once the event is kept (400 and 503
otherwise), then published in arrival order, many at a time, again after failures, and after a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dualbus.producers.checkpoints import CheckpointError, CheckpointStore
from tests.unit.producers.contexts import data_event
from tests.unit.producers.webhook_parts import (
    EVENT,
    KEY,
    ROW,
    WITHIN,
    customers,
    http_to,
    publishing,
    until,
    webhook_parts,
)
from tests.unit.retry_waits import recorded_waits


@pytest.fixture
def parts(tmp_path: Path):
    with webhook_parts(tmp_path) as made:
        yield made


@pytest.mark.asyncio
async def test_an_event_is_acknowledged_once_kept_and_then_published(parts) -> None:
    """A valid event with the right code is answered 200 once kept; the inbox then puts its change on the
    customer topic and lets it go."""
    client, _, inbox, store = parts
    async with http_to(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT)
    assert response.status_code == 200
    assert response.json() == {"accepted": "4af10637-4ea2-e711-8122-000d3aa2331c"}
    assert len(store.inbox(10)) == 1
    assert customers(client) == []
    async with publishing(inbox):
        await until(lambda: not store.inbox(10))
    assert customers(client) == ["C-1"]


@pytest.mark.asyncio
async def test_events_kept_by_a_stopped_producer_are_published_by_the_next(parts, tmp_path: Path) -> None:
    """What was kept and not published (the producer killed) is in the store for the next start."""
    client, _, inbox, store = parts
    async with http_to(inbox) as http:
        assert (await http.post("/fo/events", params={"code": KEY}, content=EVENT)).status_code == 200
    reopened = CheckpointStore(tmp_path / "producer-fo.sqlite3")
    try:
        assert [body for _, body in reopened.inbox(10)] == [EVENT]
    finally:
        reopened.close()
    async with publishing(inbox):
        await until(lambda: not store.inbox(10))
    assert customers(client) == ["C-1"]


@pytest.mark.asyncio
async def test_events_of_many_rows_go_in_one_read_and_one_publish(parts) -> None:
    """Events that arrived meanwhile are published together: every row read once, the last event standing
    for its row, in arrival order."""
    client, reader, inbox, store = parts
    accounts = {f"C-{n}": f"00004c03-0000-0000-0100-00000000000{n}" for n in range(2, 6)}
    async with http_to(inbox) as http:
        for account in [*accounts, "C-2"]:
            row = {**ROW, "CustomerAccount": account}
            reader.put("CustomersV3", row)
            event = data_event("OnExternalUpdated", "CustomersV3", accounts[account], row)
            assert (await http.post("/fo/events", params={"code": KEY}, json=event)).status_code == 200
    reads = reader.reads
    async with publishing(inbox):
        await until(lambda: not store.inbox(10))
    assert reader.reads - reads == 1  # the four rows in one request of "or"-ed keys
    assert customers(client) == ["C-3", "C-4", "C-5", "C-2"]
    assert len(client.get_topic_sender("dualbus.customer").sent) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("params", [{}, {"code": ""}, {"code": "wrong"}, {"code": KEY + "x"}])
async def test_a_missing_or_wrong_code_is_refused(parts, params: dict[str, str]) -> None:
    """Without the WebhookKey, or with another, the answer is 401 and nothing is published."""
    client, _, inbox, store = parts
    async with http_to(inbox) as http:
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
        http = http_to(inbox, key=None)
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
    async with http_to(inbox) as http:
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
    async with http_to(inbox) as http:
        assert (await http.post("/fo/events", params={"code": KEY}, content=EVENT)).status_code == 200
    with recorded_waits() as waits:
        async with publishing(inbox):
            await asyncio.wait_for(waits.scheduled.wait(), WITHIN)
            assert len(store.inbox(10)) == 1
            sender.failing = reader.failing = False
            await until(lambda: not store.inbox(10))
    assert customers(client) == ["C-1"]


@pytest.mark.asyncio
async def test_an_event_that_cannot_be_kept_is_answered_503_with_retry_after(parts) -> None:
    """A store that cannot take the event (its disk failing) makes the webhook answer 503 with Retry-After,
    so that Dataverse sends it again."""
    _, _, inbox, store = parts
    store.close()
    async with http_to(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.asyncio
async def test_health_lists_the_entities_without_a_key(parts) -> None:
    """The health check needs no code and names the entity sets whose events are taken."""
    _, _, inbox, _ = parts
    async with http_to(inbox) as http:
        body = (await http.get("/healthz")).json()
    assert body["status"] == "ok"
    assert sorted(body["entities"]) == ["CustomerGroups", "CustomersV3", "PaymentTerms"]


class _FailingOnce:
    """One of the store's inbox calls failing once, as SQLite does on a full disk or a lock held too long."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self.call = call
        self.failed = False

    def __call__(self, *args: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise CheckpointError("cannot use the checkpoint store: database is locked")
        return self.call(*args)


@pytest.mark.asyncio
@pytest.mark.parametrize("failing", ["inbox", "remove_from_inbox"])
async def test_a_failure_of_the_inbox_store_is_retried_after_a_backoff(
    parts, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """Listing the kept events, or forgetting the published ones, failing once is waited out like a failed
    publish: the inbox goes on and publishes (and lets go of) the event, rather than stopping the producer."""
    client, _, inbox, store = parts
    async with http_to(inbox) as http:
        assert (await http.post("/fo/events", params={"code": KEY}, content=EVENT)).status_code == 200
    once = _FailingOnce(getattr(store, failing))
    monkeypatch.setattr(store, failing, once)
    with recorded_waits() as waits:
        async with publishing(inbox):
            await until(lambda: once.failed and not store.inbox(10))
    assert len(waits) == 1
    assert customers(client)[-1] == "C-1"
