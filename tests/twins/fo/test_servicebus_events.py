"""Data events delivered to a Service Bus queue through the real azure-servicebus SDK and the emulator.

Service Bus queues and topics are documented business event endpoints:
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints
"""

from __future__ import annotations

import httpx
import orjson
import pytest
from azure.servicebus import ServiceBusClient

from sandbox.fo import FoHandle, ServiceBusEndpoint
from tests.twins.fo.conftest import customer

launcher = pytest.importorskip("sandbox.servicebus.launcher")
config = pytest.importorskip("sandbox.servicebus.config")

QUEUE = "fo-data-events"


def test_events_reach_a_service_bus_queue(fo: FoHandle, client: httpx.Client) -> None:
    """A create and an update of a customer arrive on the queue in order, message_id = EventId."""
    document = {"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Queues": [{"Name": QUEUE}]}]}}
    with launcher.start_in_process(config=config.load_config(document)) as emulator:
        endpoint = ServiceBusEndpoint(emulator.connection_string, QUEUE, kind="queue")
        fo.twin.events.add_endpoint(endpoint, ["CustomersV3"])
        client.post("/data/CustomersV3", json=customer("US-001"))
        client.patch("/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')", json={"CreditLimit": 1})
        assert fo.twin.events.flush(timeout=30)
        with (
            ServiceBusClient.from_connection_string(emulator.connection_string) as sb,
            sb.get_queue_receiver(QUEUE, max_wait_time=5) as receiver,
        ):
            messages = []
            for _ in range(5):  # a receive may return what has arrived so far: ask until both are in
                messages += receiver.receive_messages(max_message_count=10, max_wait_time=2)
                if len(messages) >= 2:
                    break
            for message in messages:
                receiver.complete_message(message)
        fo.twin.events.close()
    bodies = [orjson.loads(b"".join(m.body)) for m in messages]
    assert [b["ChangeType"] for b in bodies] == ["Create", "Update"]
    assert [str(m.message_id) for m in messages] == [b["EventId"] for b in bodies]
