"""The administration client's runtime counts, served over TLS on the emulator's AMQP port."""

from __future__ import annotations

import datetime

import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.servicebus import ServiceBusMessage
from azure.servicebus.management import ServiceBusAdministrationClient

from dualbus.sandbox.servicebus.config import (
    EmulatorConfig,
    NamespaceConfig,
    QueueConfig,
    SubscriptionConfig,
    TopicConfig,
)
from dualbus.sandbox.servicebus.launcher import start_in_process
from tests.contract.conftest import quick_client

# The emulator's certificate is from the sandbox's CA, so the administration client runs unverified, as for
# Microsoft's emulator.
pytestmark = [
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

_CONFIG = EmulatorConfig(
    namespaces=[
        NamespaceConfig(
            name="sbemulatorns",
            queues=[QueueConfig(name="counted")],
            topics=[TopicConfig(name="news", subscriptions=[SubscriptionConfig(name="reader")])],
        )
    ]
)


def test_runtime_counts_match_what_was_sent_scheduled_and_dead_lettered():
    """Queue, topic and subscription runtime properties report active, scheduled and dead-lettered counts."""
    with start_in_process(config=_CONFIG) as emulator:
        with quick_client(emulator.connection_string, keep_alive=0) as client:
            with client.get_queue_sender("counted") as sender:
                sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(3)])
            with client.get_queue_receiver("counted") as receiver:
                [first] = receiver.receive_messages(max_wait_time=5)
                receiver.dead_letter_message(first, reason="Counted")
            with client.get_topic_sender("news") as sender:
                sender.send_messages(ServiceBusMessage("now"))
                later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
                sender.schedule_messages(ServiceBusMessage("later"), later)
        admin = ServiceBusAdministrationClient.from_connection_string(
            emulator.connection_string, connection_verify=False
        )
        queue = admin.get_queue_runtime_properties("counted")
        assert (queue.active_message_count, queue.dead_letter_message_count) == (2, 1)
        topic = admin.get_topic_runtime_properties("news")
        assert (topic.scheduled_message_count, topic.subscription_count) == (1, 1)
        reader = admin.get_subscription_runtime_properties("news", "reader")
        assert reader.active_message_count == 1
        with pytest.raises(ResourceNotFoundError):
            admin.get_queue_runtime_properties("missing")


def test_administration_with_a_wrong_key_is_refused(emulator):
    """The administration API checks the same keys as AMQP: a wrong key gets an authentication error."""
    bad = emulator.connection_string.replace("SAS_KEY_VALUE", "wrong")
    admin = ServiceBusAdministrationClient.from_connection_string(bad, connection_verify=False)
    with pytest.raises(ClientAuthenticationError):
        admin.get_queue_runtime_properties("props")


def test_accessed_at_is_the_last_receive_of_each_entity():
    """AccessedAt moves to the time of the last receive on a queue or subscription, and not before one."""
    with start_in_process(config=_CONFIG) as emulator:
        admin = ServiceBusAdministrationClient.from_connection_string(
            emulator.connection_string, connection_verify=False
        )
        never = admin.get_queue_runtime_properties("counted").accessed_at_utc
        with quick_client(emulator.connection_string) as client:
            with client.get_queue_sender("counted") as sender:
                sender.send_messages(ServiceBusMessage("touch"))
            with client.get_topic_sender("news") as sender:
                sender.send_messages(ServiceBusMessage("touch"))
            before = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
            with client.get_queue_receiver("counted") as receiver:
                [message] = receiver.receive_messages(max_wait_time=5)
                receiver.complete_message(message)
            queue_accessed = admin.get_queue_runtime_properties("counted").accessed_at_utc
            reader_untouched = admin.get_subscription_runtime_properties("news", "reader").accessed_at_utc
            with client.get_subscription_receiver("news", "reader") as receiver:
                [message] = receiver.receive_messages(max_wait_time=5)
                receiver.complete_message(message)
            reader_accessed = admin.get_subscription_runtime_properties("news", "reader").accessed_at_utc
        after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    assert never is not None
    assert never.year == 1, "Azure reports DateTime.MinValue before any receive"
    assert reader_untouched is not None
    assert reader_untouched.year == 1
    assert queue_accessed is not None
    assert before <= queue_accessed <= after
    assert reader_accessed is not None
    assert queue_accessed <= reader_accessed <= after
