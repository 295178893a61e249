"""Data events delivered to a Service Bus queue through the real azure-servicebus SDK and the emulator.

Service Bus queues and topics are documented event endpoints, proxied through Dataverse, whose listener
reads the RemoteExecutionContext as JSON when the content type is application/json:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/e315b9a767be2310f4dbd29db22785d1bbe62881/articles/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints.md
https://github.com/MicrosoftDocs/powerapps-docs/blob/1cbdbbce58d16aeb4ffd801809fc04baaa7807d7/powerapps-docs/developer/data-platform/write-listener-application-azure-solution.md
"""

from __future__ import annotations

import httpx
import orjson
from azure.servicebus import ServiceBusClient

from dualbus.sandbox.fo import FoHandle, ServiceBusEndpoint
from dualbus.sandbox.servicebus import config, launcher
from tests.twins.fo.conftest import KEY_PATH, customer

QUEUE = "fo-data-events"


def test_events_reach_a_service_bus_queue(fo: FoHandle, client: httpx.Client) -> None:
    """A customer's create, update and delete arrive in order as JSON contexts, message_id = OperationId."""
    document = {"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Queues": [{"Name": QUEUE}]}]}}
    with launcher.start_in_process(config=config.load_config(document)) as emulator:
        endpoint = ServiceBusEndpoint(emulator.connection_string, QUEUE, kind="queue")
        fo.twin.events.add_endpoint(endpoint, ["CustomersV3"])
        client.post("/data/CustomersV3", json=customer("US-001"))
        client.patch(KEY_PATH, json={"CreditLimit": 1})
        client.delete(KEY_PATH)
        assert fo.twin.events.flush(timeout=30)
        with (
            ServiceBusClient.from_connection_string(emulator.connection_string) as sb,
            sb.get_queue_receiver(QUEUE, max_wait_time=5) as receiver,
        ):
            messages = []
            for _ in range(5):  # a receive may return what has arrived so far: ask until all are in
                messages += receiver.receive_messages(max_message_count=10, max_wait_time=2)
                if len(messages) >= 3:
                    break
            for message in messages:
                receiver.complete_message(message)
        fo.twin.events.close()
    bodies = [orjson.loads(b"".join(m.body)) for m in messages]
    assert [b["MessageName"] for b in bodies] == [
        "OnExternalCreated",
        "OnExternalUpdated",
        "OnExternalDeleted",
    ]
    assert {b["PrimaryEntityName"] for b in bodies} == {"mserp_custcustomerv3entity"}
    assert len({b["PrimaryEntityId"] for b in bodies}) == 1
    assert [str(m.message_id) for m in messages] == [b["OperationId"] for b in bodies]
    assert {m.content_type for m in messages} == {"application/json"}
    created, updated, deleted = ({p["key"]: p["value"] for p in b["InputParameters"]} for b in bodies)
    assert {"mserp_customeraccount", "mserp_customergroupid"} <= {
        a["key"] for a in created["Target"]["Attributes"]
    }
    assert [a["key"] for a in updated["Target"]["Attributes"]] == ["mserp_creditlimit"]
    assert (deleted["Target"]["Attributes"], set(deleted)) == ([], {"Target", "PreImage"})
