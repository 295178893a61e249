"""The F&O source against the F&O twin and the emulator: webhook, Service Bus intake and the full scan."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceiveMode, ServiceBusSubQueue

from dualbus.demo.processes import free_port
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_poller import FoScanner
from dualbus.producers.fo_reader import FoReader
from dualbus.producers.runner import open_context
from dualbus.producers.settings import ProducerOptions
from dualbus.sandbox.fo import FoHandle, ServiceBusEndpoint, WebhookEndpoint
from dualbus.shared.envelope import Envelope, Operation, Origin
from tests.integration.producers.support import (
    EVENTS_QUEUE,
    WEBHOOK_KEY,
    Emulator,
    ProducerProcess,
    customer,
    drain_tap,
    environment_for,
    settings_for,
    wait_healthy,
)

pytestmark = pytest.mark.integration

CUSTOMER = "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='{}')"


def producer_env(emulator: Emulator, fo: FoHandle, tmp_path: Path, **options: str) -> dict[str, str]:
    """The subprocess environment of an F&O producer with these producer options."""
    extra = {f"DUALBUS_PRODUCER__{name.upper()}": value for name, value in options.items()}
    extra["DUALBUS_LOG_LEVEL"] = "INFO"
    return environment_for(settings_for(emulator, tmp_path, fo=fo), **extra)


def lifecycle_steps(workload: httpx.Client, pipeline: httpx.Client) -> list[Callable[[], None]]:
    """A person (``workload``) creates, renames and deletes C-1; dualbus (``pipeline``) creates C-2."""

    def create() -> None:
        assert workload.post("/data/CustomersV3", json=customer("C-1", "Fabrikam")).status_code == 201

    def rename() -> None:
        assert workload.patch(CUSTOMER.format("C-1"), json={"OrganizationName": "Fabrikam Ltd"}).is_success

    def delete() -> None:
        assert workload.delete(CUSTOMER.format("C-1")).is_success

    def dualbus_writes() -> None:
        assert (
            pipeline.post("/data/CustomersV3", json=customer("C-2", "Written by dualbus")).status_code == 201
        )

    return [create, rename, delete, dualbus_writes]


def assert_lifecycle(events: list[Envelope]) -> None:
    """C-1's create, rename and delete in version order; C-2's create (dualbus's writes come back once)."""
    first = [e for e in events if e.key["CustomerAccount"] == "C-1"]
    assert [e.operation for e in first] == [Operation.CREATE, Operation.UPDATE, Operation.DELETE]
    assert first[1].data["OrganizationName"] == "Fabrikam Ltd"
    assert [e.source_version for e in first] == sorted({e.source_version for e in first})
    second = [e for e in events if e.key["CustomerAccount"] == "C-2"]
    assert [(e.operation, e.base_version) for e in second] == [(Operation.CREATE, 0)]


def test_webhook_events_are_published_and_a_wrong_key_is_refused(
    emulator: Emulator, fo: FoHandle, tmp_path: Path
) -> None:
    """Data events with the WebhookKey are published one by one; the same events without it are refused."""
    with _webhook_producer(emulator, fo, tmp_path) as url:
        fo.twin.events.add_endpoint(WebhookEndpoint(url, code=WEBHOOK_KEY, name="keyed"), ["CustomersV3"])
        fo.twin.events.add_endpoint(WebhookEndpoint(url, code="guess", name="guessing"), ["CustomersV3"])
        events: list[Envelope] = []
        with fo.client("workload") as workload, fo.client("dualbus") as pipeline:
            for step in lifecycle_steps(workload, pipeline):
                step()
                # The webhook answers once the event is kept; waiting for its change on the bus before the
                # next step keeps the steps' changes apart.
                assert fo.twin.events.flush(timeout=30)
                events += drain_tap(emulator.connection_string, ["customer"], expect=1, timeout=30)
        assert_lifecycle(events)
        stats = fo.twin.events.stats
        assert (stats.delivered.get("keyed"), stats.given_up.get("keyed")) == (4, None)
        assert (stats.delivered.get("guessing"), stats.given_up.get("guessing")) == (None, 4)
        assert drain_tap(emulator.connection_string, ["customer"], idle=1.0) == []


def test_a_webhook_event_past_256kb_is_published_from_the_row_it_names(
    emulator: Emulator, fo: FoHandle, tmp_path: Path
) -> None:
    """An update whose event is past Dataverse's webhook limit comes without its record, named by its row id
    alone: the producer finds the row from its earlier event and publishes its state as read."""
    with _webhook_producer(emulator, fo, tmp_path) as url:
        fo.twin.events.add_endpoint(WebhookEndpoint(url, code=WEBHOOK_KEY), ["CustomersV3"])
        with fo.client("workload") as workload:
            assert workload.post("/data/CustomersV3", json=customer("C-1", "Fabrikam")).status_code == 201
            assert fo.twin.events.flush(timeout=30)
            created = drain_tap(emulator.connection_string, ["customer"], expect=1, timeout=30)
            renamed = {"OrganizationName": "Fabrikam Ltd", "InvoiceAddressStreet": "x" * 300_000}
            assert workload.patch(CUSTOMER.format("C-1"), json=renamed).is_success
            assert fo.twin.events.flush(timeout=30)
            updated = drain_tap(emulator.connection_string, ["customer"], expect=1, timeout=30)
        assert [e.operation for e in created + updated] == [Operation.CREATE, Operation.UPDATE]
        assert updated[0].data["OrganizationName"] == "Fabrikam Ltd"


@contextlib.contextmanager
def _webhook_producer(emulator: Emulator, fo: FoHandle, tmp_path: Path) -> Iterator[str]:
    """The F&O producer of customers taking data events on a keyed webhook; yields the webhook's URL."""
    port = free_port()
    env = producer_env(
        emulator, fo, tmp_path, fo_events="webhook", webhook_port=str(port), fo_webhook_key=WEBHOOK_KEY
    )
    producer = ProducerProcess("fo", env, areas="customer")
    try:
        producer.wait_started()
        wait_healthy(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/fo/events"
    finally:
        producer.stop()


def _dead_letters(connection_string: str, expect: int) -> list[tuple[str | None, str | None]]:
    found: list[tuple[str | None, str | None]] = []
    deadline = time.monotonic() + 30
    with (
        ServiceBusClient.from_connection_string(connection_string) as client,
        client.get_queue_receiver(
            queue_name=EVENTS_QUEUE,
            sub_queue=ServiceBusSubQueue.DEAD_LETTER,
            receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE,
        ) as receiver,
    ):
        while len(found) < expect and time.monotonic() < deadline:
            messages = receiver.receive_messages(max_message_count=10, max_wait_time=0.5)
            found.extend((m.dead_letter_reason, m.dead_letter_error_description) for m in messages)
    return found


def test_service_bus_events_are_published_and_other_formats_dead_lettered(
    emulator: Emulator, fo: FoHandle, tmp_path: Path
) -> None:
    """JSON data events on a queue are published and settled; binary, XML and malformed ones dead-lettered."""
    fo.twin.events.add_endpoint(
        ServiceBusEndpoint(emulator.connection_string, EVENTS_QUEUE, kind="queue"), ["CustomersV3"]
    )
    env = producer_env(emulator, fo, tmp_path, fo_events="servicebus", events_queue=EVENTS_QUEUE)
    producer = ProducerProcess("fo", env, areas="customer")
    try:
        producer.wait_started()
        events: list[Envelope] = []
        with fo.client("workload") as workload, fo.client("dualbus") as pipeline:
            for step in lifecycle_steps(workload, pipeline):
                step()
                events += drain_tap(emulator.connection_string, ["customer"], expect=1, timeout=30)
        assert_lifecycle(events)
        with (
            ServiceBusClient.from_connection_string(emulator.connection_string) as client,
            client.get_queue_sender(EVENTS_QUEUE) as sender,
        ):
            sender.send_messages(
                [
                    ServiceBusMessage(b"\x40\x06binary", content_type="application/msbin1"),
                    ServiceBusMessage(b"<RemoteExecutionContext/>", content_type="application/xml"),
                    ServiceBusMessage(b'{"MessageName": "Assign"}', content_type="application/json"),
                ]
            )
        dead = _dead_letters(emulator.connection_string, expect=3)
    finally:
        producer.stop()
    assert sorted(reason or "" for reason, _ in dead) == [
        "InvalidDataEvent",
        "UnsupportedEventFormat",
        "UnsupportedEventFormat",
    ]
    unsupported = [text or "" for reason, text in dead if reason == "UnsupportedEventFormat"]
    assert all("to JSON" in text for text in unsupported)


@pytest.mark.asyncio
async def test_scan_publishes_what_changed_and_deletes_what_is_gone(
    emulator: Emulator, paged_fo: FoHandle, tmp_path: Path
) -> None:
    """Across next-linked pages the scan publishes new and changed rows once, and deletes of removed ones."""
    settings = settings_for(emulator, tmp_path, fo=paged_fo)
    async with open_context(Origin.FO, settings, ProducerOptions(), areas=["customer"]) as ctx:
        scanner = FoScanner(FoReader(ctx.api), ctx.tables, ctx.publisher, ctx.store, VersionClock(ctx.store))
        with paged_fo.client("workload") as workload, paged_fo.client("dualbus") as pipeline:
            for number in range(7):
                assert (
                    workload.post("/data/CustomersV3", json=customer(f"S-{number}", "New")).status_code == 201
                )
            assert await scanner.scan_once() == 7
            assert await scanner.scan_once() == 0
            assert workload.patch(CUSTOMER.format("S-1"), json={"OrganizationName": "Changed"}).is_success
            assert workload.delete(CUSTOMER.format("S-5")).is_success
            assert await scanner.scan_once() == 2
            # dualbus applies a Dataverse change without altering the values: its base version comes back.
            assert pipeline.patch(CUSTOMER.format("S-2"), json={"DualbusSourceVersion": 42}).is_success
            assert await scanner.scan_once() == 1
    events = drain_tap(emulator.connection_string, ["customer"], expect=10)
    assert [e.operation for e in events[:7]] == [Operation.CREATE] * 7
    changed, deleted, echoed = events[7:]
    assert (changed.operation, changed.key["CustomerAccount"]) == (Operation.UPDATE, "S-1")
    assert changed.data["OrganizationName"] == "Changed"
    assert (deleted.operation, deleted.key["CustomerAccount"]) == (Operation.DELETE, "S-5")
    assert (echoed.key["CustomerAccount"], echoed.base_version) == ("S-2", 42)


def test_a_taken_webhook_port_ends_the_producer_with_one_line(
    emulator: Emulator, fo: FoHandle, tmp_path: Path
) -> None:
    """The port the webhook must listen on is taken: the producer exits 1 with one error line naming it,
    no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = producer_env(emulator, fo, tmp_path, fo_events="webhook", webhook_port=str(port))
        producer = ProducerProcess("fo", env, areas="customer")
        try:
            assert producer.process.wait(timeout=60) == 1
        finally:
            producer.stop()
    errors = [line for line in producer.lines if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: the F&O data event webhook could not be served on 127.0.0.1:{port}")
    assert not any("Traceback" in line for line in producer.lines)
