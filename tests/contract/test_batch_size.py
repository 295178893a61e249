"""Message and batch size: the limit advertised on attach is the one a transfer is measured against."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage
from azure.servicebus.exceptions import MessageSizeExceededError

from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from tests.contract.conftest import quick_client

pytestmark = pytest.mark.contract

# Azure Service Bus Standard: 256 KB per message and per batch, advertised as the link's max-message-size.
# https://learn.microsoft.com/azure/service-bus-messaging/service-bus-quotas
_STANDARD_LIMIT = 256 * 1024
_PREMIUM_LIKE_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def sized() -> Iterator[EmulatorThread]:
    """An emulator with a Premium-like limit, so one message spans several 1 MiB frames."""
    config = EmulatorConfig(
        namespaces=[
            NamespaceConfig(name="sized", queues=[QueueConfig(name="large"), QueueConfig(name="busy")])
        ]
    )
    with start_in_process(config=config, max_message_bytes=_PREMIUM_LIKE_LIMIT) as handle:
        yield handle


def test_sender_learns_the_standard_limit_from_the_attach(client: ServiceBusClient):
    """The sender link's attach advertises 262,144 bytes, so the SDK sizes batches and messages by it."""
    with client.get_queue_sender("size") as sender:
        batch = sender.create_message_batch()
        # The SDK keeps the attach's max-message-size here; Azure Standard sends 262,144.
        assert sender._max_message_size_on_link == _STANDARD_LIMIT  # no public accessor
        assert batch.max_size_in_bytes == _STANDARD_LIMIT
        with pytest.raises(MessageSizeExceededError):
            sender.send_messages(ServiceBusMessage(b"x" * (_STANDARD_LIMIT + 1)))


def test_full_batch_is_accepted_while_a_receiver_settles_on_the_same_connection(client: ServiceBusClient):
    """A batch the SDK filled to its limit is stored whole while completions share its connection."""
    with client.get_queue_sender("size") as sender, client.get_queue_receiver("size") as receiver:
        for round_ in range(3):
            batch = sender.create_message_batch()
            count = 0
            while True:
                try:
                    batch.add_message(
                        ServiceBusMessage(os.urandom(700), application_properties={"r": round_})
                    )
                except MessageSizeExceededError:
                    break
                count += 1
            assert batch.size_in_bytes > _STANDARD_LIMIT - 1024
            sender.send_messages(batch)
            received = 0
            while received < count:
                got = receiver.receive_messages(max_message_count=count - received, max_wait_time=5)
                assert got, f"round {round_}: {received} of {count} received"
                for message in got:
                    receiver.complete_message(message)
                received += len(got)


def test_multi_frame_messages_arrive_intact_beside_busy_links(sized: EmulatorThread):
    """Messages larger than a frame, sent while other links on the connection are busy, arrive intact."""
    bodies = [os.urandom(1_500_000 + i) for i in range(4)]
    stop = threading.Event()
    with quick_client(sized.connection_string, keep_alive=0) as sb:

        def churn() -> None:
            with sb.get_queue_sender("busy") as busy, sb.get_queue_receiver("busy") as drain:
                while not stop.is_set():
                    busy.send_messages([ServiceBusMessage(b"small") for _ in range(20)])
                    for message in drain.receive_messages(max_message_count=20, max_wait_time=0.2):
                        drain.complete_message(message)

        worker = threading.Thread(target=churn, daemon=True)
        worker.start()
        try:
            with sb.get_queue_sender("large") as sender:
                for body in bodies:
                    sender.send_messages(ServiceBusMessage(body))
        finally:
            stop.set()
            worker.join(timeout=10)
        with sb.get_queue_receiver("large") as receiver:
            got = []
            while len(got) < len(bodies):
                batch = receiver.receive_messages(max_message_count=len(bodies), max_wait_time=5)
                assert batch, f"only {len(got)} of {len(bodies)} large messages arrived"
                for message in batch:
                    got.append(b"".join(message.body))
                    receiver.complete_message(message)
    assert got == bodies
