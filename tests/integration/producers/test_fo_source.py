"""The F&O source against the F&O twin and the emulator: webhook, Service Bus intake and polling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.fo_poller import FoPoller, watermark_name
from producers.fo_reader import FoReader
from producers.runner import open_context
from producers.settings import ProducerOptions
from sandbox.fo import FoHandle, ServiceBusEndpoint
from shared.envelope import Operation, Origin
from tests.integration.producers.support import (
    EVENTS_QUEUE,
    OWN_USERS,
    Emulator,
    ProducerProcess,
    customer,
    drain_tap,
    environment_for,
    free_port,
    settings_for,
    wait_healthy,
)

pytestmark = pytest.mark.integration

CUSTOMER = "CustomersV3(dataAreaId='usmf',CustomerAccount='{}')"


def change_customers(fo: FoHandle) -> None:
    """A person creates, updates and deletes C-1; dualbus itself creates C-ECHO."""
    with fo.client("workload") as workload, fo.client("dualbus") as pipeline:
        assert workload.post("/data/CustomersV3", json=customer("C-1", "Fabrikam")).status_code == 201
        assert workload.patch(
            f"/data/{CUSTOMER.format('C-1')}", json={"OrganizationName": "Fabrikam Ltd"}
        ).is_success
        assert workload.delete(f"/data/{CUSTOMER.format('C-1')}").is_success
        assert pipeline.post("/data/CustomersV3", json=customer("C-ECHO", "Echo")).status_code == 201


def assert_customer_lifecycle(emulator: Emulator) -> None:
    """The tap holds C-1's create, update and delete, in version order, and nothing of C-ECHO."""
    events = drain_tap(emulator.connection_string, ["customer"], expect=3)
    drain_more = drain_tap(emulator.connection_string, ["customer"], idle=1.0)
    events += drain_more
    assert [e.operation for e in events] == [Operation.CREATE, Operation.UPDATE, Operation.DELETE]
    assert {e.key["CustomerAccount"] for e in events} == {"C-1"}
    assert events[1].data["OrganizationName"] == "Fabrikam Ltd"
    versions = [e.source_version for e in events]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


def producer_env(emulator: Emulator, fo: FoHandle, tmp_path: Path, **options: str) -> dict[str, str]:
    """The subprocess environment of an F&O producer with these producer options."""
    extra = {f"DUALBUS_PRODUCER__{name.upper()}": value for name, value in options.items()}
    extra["DUALBUS_PRODUCER__OWN_USERS"] = json.dumps(list(OWN_USERS))
    extra["DUALBUS_LOG_LEVEL"] = "INFO"
    return environment_for(settings_for(emulator, tmp_path, fo=fo), **extra)


def test_webhook_events_are_published(emulator: Emulator, slow_retry_fo: FoHandle, tmp_path: Path) -> None:
    """Data events POSTed to the webhook are published as create, update and delete; echoes are not."""
    port = free_port()
    env = producer_env(emulator, slow_retry_fo, tmp_path, fo_events="webhook", webhook_port=str(port))
    producer = ProducerProcess("fo", env, areas="customer")
    try:
        producer.wait_started()
        wait_healthy(f"http://127.0.0.1:{port}/healthz")
        slow_retry_fo.twin.add_webhook(f"http://127.0.0.1:{port}/fo/events", ["CustomersV3"])
        change_customers(slow_retry_fo)
        assert slow_retry_fo.twin.events.flush(timeout=30)
        assert_customer_lifecycle(emulator)
        assert slow_retry_fo.twin.events.stats.given_up == {}
    finally:
        producer.stop()


def test_service_bus_events_are_published(emulator: Emulator, fo: FoHandle, tmp_path: Path) -> None:
    """Data events F&O sends to a Service Bus queue become events on the area topic, settled after publish."""
    endpoint = ServiceBusEndpoint(emulator.connection_string, EVENTS_QUEUE, kind="queue")
    fo.twin.events.add_endpoint(endpoint, ["CustomersV3"])
    env = producer_env(emulator, fo, tmp_path, fo_events="servicebus", events_queue=EVENTS_QUEUE)
    producer = ProducerProcess("fo", env, areas="customer")
    try:
        producer.wait_started()
        change_customers(fo)
        assert fo.twin.events.flush(timeout=30)
        assert_customer_lifecycle(emulator)
    finally:
        producer.stop()


@pytest.mark.asyncio
async def test_polling_publishes_changes_after_the_watermark(
    emulator: Emulator, fo: FoHandle, tmp_path: Path
) -> None:
    """Polling publishes new and changed rows once each, moves the watermark, and skips dualbus's writes."""
    settings = settings_for(emulator, tmp_path, fo=fo)
    async with open_context(
        Origin.FO, settings, ProducerOptions(own_users=OWN_USERS), areas=["customer"]
    ) as ctx:
        tables = [t for t in ctx.tables if t.name == "CustomersV3"]
        poller = FoPoller(FoReader(ctx.api), tables, ctx.publisher, ctx.store, ctx.echo, page_size=2)
        with fo.client("workload") as workload, fo.client("dualbus") as pipeline:
            for number in range(3):
                assert (
                    workload.post("/data/CustomersV3", json=customer(f"P-{number}", "New")).status_code == 201
                )
            assert pipeline.post("/data/CustomersV3", json=customer("P-ECHO", "Echo")).status_code == 201
            assert await poller.poll_once() == 3
            assert poller.skipped_echo == 1
            assert await poller.poll_once() == 0
            assert workload.patch(
                f"/data/{CUSTOMER.format('P-1')}", json={"OrganizationName": "Changed"}
            ).is_success
            assert await poller.poll_once() == 1
        watermark = ctx.store.get(watermark_name(tables[0]))
    events = drain_tap(emulator.connection_string, ["customer"], expect=4)
    assert [e.key["CustomerAccount"] for e in events] == ["P-0", "P-1", "P-2", "P-1"]
    assert events[-1].data["OrganizationName"] == "Changed"
    assert watermark is not None
