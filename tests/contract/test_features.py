"""The sync SDK against topics, scheduling, TTL, duplicate detection, forwarding and refused access."""

from __future__ import annotations

import datetime

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.exceptions import MessagingEntityNotFoundError, ServiceBusAuthenticationError

from tests.contract.conftest import MovedClock, quick_client

pytestmark = pytest.mark.contract


def _settle_all(receiver: object, expected: int) -> list[str]:
    """Receive and complete until ``expected`` messages came, then check that nothing more is waiting."""
    got: list = []
    while len(got) < expected:
        batch = receiver.receive_messages(max_message_count=expected - len(got), max_wait_time=3)
        assert batch, f"only {len(got)} of {expected} messages arrived"
        got += batch
    got += receiver.receive_messages(max_message_count=10, max_wait_time=0.3)
    for message in got:
        receiver.complete_message(message)
    return sorted(str(m) for m in got)


def _drain(client: ServiceBusClient, queue: str, expected: int, **kwargs: object) -> list[str]:
    with client.get_queue_receiver(queue, **kwargs) as receiver:
        return _settle_all(receiver, expected)


def _drain_subscription(client: ServiceBusClient, name: str, expected: int) -> list[str]:
    with client.get_subscription_receiver("events", name) as receiver:
        return _settle_all(receiver, expected)


def test_topic_fans_out_through_subscription_rules(client):
    """Each subscription gets what its correlation or SQL rule admits; the match-all one gets all."""
    with client.get_topic_sender("events") as sender:
        sender.send_messages(
            [
                ServiceBusMessage("c1", subject="customer"),
                ServiceBusMessage("o1", application_properties={"amount": 500, "area": "eu"}),
                ServiceBusMessage("o2", application_properties={"amount": 5, "area": "eu"}),
            ]
        )
    assert _drain_subscription(client, "all", 3) == ["c1", "o1", "o2"]
    assert _drain_subscription(client, "customers", 1) == ["c1"]
    assert _drain_subscription(client, "big-orders", 1) == ["o1"]


def test_rule_action_stamps_its_own_copy(client):
    """A rule with an action delivers its own edited copy named by RuleName; action-less rules give one."""
    with client.get_topic_sender("stamping") as sender:
        sender.send_messages(
            [
                ServiceBusMessage("eu-customer", subject="customer", application_properties={"area": "eu"}),
                ServiceBusMessage("us-customer", subject="customer", application_properties={"area": "us"}),
                ServiceBusMessage("eu-order", application_properties={"area": "eu"}),
            ]
        )
    with client.get_subscription_receiver("stamping", "stamped") as receiver:
        got = []
        while len(got) < 4:
            batch = receiver.receive_messages(max_message_count=10, max_wait_time=3)
            assert batch, f"only {len(got)} of 4 copies arrived"
            got += batch
        for message in got:
            receiver.complete_message(message)
    copies = sorted(
        (str(m), m.application_properties.get(b"region", b""), m.application_properties.get(b"RuleName", b""))
        for m in got
    )
    assert copies == [
        ("eu-customer", b"", b""),
        ("eu-customer", b"emea", b"tag-eu"),
        ("eu-order", b"emea", b"tag-eu"),
        ("us-customer", b"", b""),
    ]


def test_scheduled_message_appears_at_its_time(client):
    """A scheduled message is invisible to receivers until its enqueue time, then arrives under a new
    sequence number, as if sent at that time."""
    with client.get_queue_sender("schedule") as sender, client.get_queue_receiver("schedule") as receiver:
        when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
        [number] = sender.schedule_messages(ServiceBusMessage("timed"), when)
        assert number > 0
        assert receiver.receive_messages(max_wait_time=0.3) == []
        [message] = receiver.receive_messages(max_wait_time=5)
        assert datetime.datetime.now(datetime.UTC) >= when
        assert str(message) == "timed"
        assert message.sequence_number > number
        assert message.scheduled_enqueue_time_utc is not None
        receiver.complete_message(message)


def test_cancelled_scheduled_message_never_arrives(moved_clock: MovedClock):
    """Cancelling a scheduled message by sequence number removes it for good."""
    client = moved_clock.client
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    with client.get_queue_sender("cancel") as sender:
        numbers = sender.schedule_messages([ServiceBusMessage("x"), ServiceBusMessage("y")], when)
        assert len(numbers) == 2
        sender.cancel_scheduled_messages(numbers[0])
    moved_clock.pass_time(1.2)
    assert _drain(client, "cancel", 1) == ["y"]


def test_expired_message_is_dead_lettered_when_the_queue_says_so(moved_clock: MovedClock):
    """A message outliving the queue's TTL moves to the dead-letter queue with TTLExpiredException."""
    client = moved_clock.client
    with client.get_queue_sender("ttl-dlq") as sender:
        sender.send_messages(ServiceBusMessage("stale"))
    moved_clock.pass_time(1.3)
    with client.get_queue_receiver("ttl-dlq") as receiver:
        assert receiver.receive_messages(max_wait_time=0.3) == []
    with client.get_queue_receiver("ttl-dlq", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = dlq.receive_messages(max_wait_time=3)
        assert dead.dead_letter_reason == "TTLExpiredException"
        dlq.complete_message(dead)


def test_expired_message_is_dropped_without_dead_lettering(moved_clock: MovedClock):
    """Without dead-lettering on expiry, an expired message simply disappears."""
    client = moved_clock.client
    with client.get_queue_sender("ttl-drop") as sender:
        sender.send_messages(ServiceBusMessage("gone"))
    moved_clock.pass_time(1.3)
    assert _drain(client, "ttl-drop", 0) == []
    assert _drain(client, "ttl-drop", 0, sub_queue=ServiceBusSubQueue.DEAD_LETTER) == []


def test_message_time_to_live_shorter_than_the_queue_s_wins(moved_clock: MovedClock):
    """A message's own time-to-live, shorter than its queue's, makes it expire on time."""
    client = moved_clock.client
    with client.get_queue_sender("message-ttl") as sender:
        sender.send_messages(
            [
                ServiceBusMessage("short", time_to_live=datetime.timedelta(seconds=1)),
                ServiceBusMessage("long"),
            ]
        )
    moved_clock.pass_time(1.3)
    assert _drain(client, "message-ttl", 1) == ["long"]


def test_subscription_has_its_own_dead_letter_queue(client):
    """A message dead-lettered from a subscription lands in that subscription's dead-letter sub-queue."""
    with client.get_topic_sender("events") as sender:
        sender.send_messages(ServiceBusMessage("reject-me", subject="dl"))
    with client.get_subscription_receiver("events", "dead-letters") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        receiver.dead_letter_message(message, reason="NoHandler", error_description="nobody wants it")
    with client.get_subscription_receiver(
        "events", "dead-letters", sub_queue=ServiceBusSubQueue.DEAD_LETTER
    ) as dlq:
        [dead] = dlq.receive_messages(max_wait_time=5)
        assert (str(dead), dead.dead_letter_reason) == ("reject-me", "NoHandler")
        dlq.complete_message(dead)


def test_duplicate_message_id_is_dropped_within_the_window(client):
    """A second message with the same id inside the detection window is accepted but not enqueued."""
    with client.get_queue_sender("dedup") as sender:
        sender.send_messages(ServiceBusMessage("first", message_id="same"))
        sender.send_messages(ServiceBusMessage("second", message_id="same"))
        sender.send_messages(ServiceBusMessage("other", message_id="different"))
    assert _drain(client, "dedup", 2) == ["first", "other"]


def test_auto_forwarding_moves_messages_to_the_target(client):
    """A queue with ForwardTo passes what it receives on to the target queue."""
    with client.get_queue_sender("forward-source") as sender:
        sender.send_messages(ServiceBusMessage("hop"))
    assert _drain(client, "forward-target", 1) == ["hop"]
    assert _drain(client, "forward-source", 0) == []


def test_copies_forwarded_to_one_queue_each_arrive_with_a_sequence_number_of_their_own(client):
    """Two subscriptions forwarding to one queue deliver two messages there, numbered by that queue."""
    with client.get_topic_sender("fan-in") as sender:
        sender.send_messages(ServiceBusMessage("twice"))
    with client.get_queue_receiver(
        "fan-in-target", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE
    ) as r:
        received = r.receive_messages(max_message_count=10, max_wait_time=3)
        received += r.receive_messages(max_message_count=10, max_wait_time=1)
    assert [str(m) for m in received] == ["twice", "twice"]
    assert len({m.sequence_number for m in received}) == 2


def test_unknown_entity_raises_not_found(client):
    """Sending to a queue that does not exist raises MessagingEntityNotFoundError."""
    with pytest.raises(MessagingEntityNotFoundError), client.get_queue_sender("no-such-queue") as sender:
        sender.send_messages(ServiceBusMessage("x"))


def test_wrong_key_raises_authentication_error(emulator):
    """A connection string with the wrong key is refused with ServiceBusAuthenticationError."""
    bad = emulator.connection_string.replace("SAS_KEY_VALUE", "not-the-key")
    with (
        quick_client(bad, retry_total=0) as client,
        pytest.raises(ServiceBusAuthenticationError),
        client.get_queue_sender("props") as sender,
    ):
        sender.send_messages(ServiceBusMessage("x"))
