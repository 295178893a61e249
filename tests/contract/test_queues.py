"""The sync SDK against the emulator's queues: sending, receiving and every settlement."""

from __future__ import annotations

import datetime
import time

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError, MessageSizeExceededError, ServiceBusError

from tests.contract.conftest import MovedClock

pytestmark = pytest.mark.contract


def _receive(client: ServiceBusClient, queue: str, count: int = 1, **kwargs: object) -> list:
    with client.get_queue_receiver(queue, **kwargs) as receiver:
        return receiver.receive_messages(max_message_count=count, max_wait_time=2)


def test_send_and_receive_keeps_body_and_properties(client):
    """A received message carries the body, ids, subject and application properties that were sent."""
    with client.get_queue_sender("props") as sender:
        sender.send_messages(
            ServiceBusMessage(
                b"payload",
                message_id="m-1",
                correlation_id="c-1",
                subject="customer",
                content_type="application/json",
                application_properties={"area": "eu", "amount": 7},
            )
        )
    with client.get_queue_receiver("props") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        assert b"".join(message.body) == b"payload"
        assert (message.message_id, message.correlation_id, message.subject) == ("m-1", "c-1", "customer")
        assert message.content_type == "application/json"
        assert message.application_properties == {b"area": b"eu", b"amount": 7}
        assert message.sequence_number >= 1
        assert message.delivery_count == 0
        assert message.enqueued_time_utc is not None
        assert message.locked_until_utc > message.enqueued_time_utc
        receiver.complete_message(message)


def test_batch_send_delivers_every_message_in_order(client):
    """A batch of ten arrives as ten messages in the order they were added, with rising sequence numbers."""
    with client.get_queue_sender("batch") as sender:
        batch = sender.create_message_batch()
        for i in range(10):
            batch.add_message(ServiceBusMessage(f"m{i}"))
        sender.send_messages(batch)
    with client.get_queue_receiver("batch") as receiver:
        received = []
        while len(received) < 10:
            got = receiver.receive_messages(max_message_count=10, max_wait_time=3)
            assert got, "the batch did not arrive in full"
            received += got
        assert [str(m) for m in received] == [f"m{i}" for i in range(10)]
        numbers = [m.sequence_number for m in received]
        assert numbers == sorted(numbers)
        for message in received:
            receiver.complete_message(message)


def test_complete_removes_the_message(client):
    """A completed message is gone: a second receive and a peek find nothing."""
    with client.get_queue_sender("complete") as sender:
        sender.send_messages(ServiceBusMessage("once"))
    with client.get_queue_receiver("complete") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        receiver.complete_message(message)
        assert receiver.receive_messages(max_wait_time=0.3) == []
        assert receiver.peek_messages(max_message_count=5) == []


def test_abandon_redelivers_with_a_higher_delivery_count(client):
    """An abandoned message comes back at once with its delivery count raised by one."""
    with client.get_queue_sender("abandon") as sender:
        sender.send_messages(ServiceBusMessage("again"))
    with client.get_queue_receiver("abandon") as receiver:
        [first] = receiver.receive_messages(max_wait_time=5)
        receiver.abandon_message(first)
        [second] = receiver.receive_messages(max_wait_time=5)
        assert second.sequence_number == first.sequence_number
        assert second.delivery_count == first.delivery_count + 1
        receiver.complete_message(second)


def test_dead_letter_keeps_reason_and_description(client):
    """A dead-lettered message lands in the dead-letter sub-queue with its reason and description."""
    with client.get_queue_sender("dead-letter") as sender:
        sender.send_messages(ServiceBusMessage("bad", application_properties={"k": "v"}))
    with client.get_queue_receiver("dead-letter") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        receiver.dead_letter_message(message, reason="Invalid", error_description="field x missing")
        assert receiver.receive_messages(max_wait_time=0.3) == []
    with client.get_queue_receiver("dead-letter", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = dlq.receive_messages(max_wait_time=5)
        assert str(dead) == "bad"
        assert dead.dead_letter_reason == "Invalid"
        assert dead.dead_letter_error_description == "field x missing"
        assert dead.application_properties[b"k"] == b"v"
        dlq.complete_message(dead)


def test_a_dead_letter_queue_s_message_cannot_be_dead_lettered_again_and_is_kept(client):
    """Service Bus refuses to dead-letter a message of a DLQ; the refusal loses nothing."""
    with client.get_queue_sender("dead-letter-again") as sender:
        sender.send_messages(ServiceBusMessage("bad"))
    with client.get_queue_receiver("dead-letter-again") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        receiver.dead_letter_message(message, reason="Invalid")
    with client.get_queue_receiver("dead-letter-again", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = dlq.receive_messages(max_wait_time=5)
        with pytest.raises(ServiceBusError, match="dead-letter queue"):
            dlq.dead_letter_message(dead, reason="Again")
    # The SDK shuts its receiver down on that error; the message went back when the link closed.
    with client.get_queue_receiver("dead-letter-again", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [again] = dlq.receive_messages(max_wait_time=5)
        assert (str(again), again.dead_letter_reason) == ("bad", "Invalid")
        dlq.complete_message(again)


def test_max_delivery_count_dead_letters(client):
    """After max-delivery-count abandons the message is dead-lettered with MaxDeliveryCountExceeded."""
    with client.get_queue_sender("max-delivery") as sender:
        sender.send_messages(ServiceBusMessage("poison"))
    with client.get_queue_receiver("max-delivery") as receiver:
        for _ in range(2):
            [message] = receiver.receive_messages(max_wait_time=5)
            receiver.abandon_message(message)
        assert receiver.receive_messages(max_wait_time=0.3) == []
    with client.get_queue_receiver("max-delivery", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = dlq.receive_messages(max_wait_time=5)
        assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
        assert dead.delivery_count == 2
        dlq.complete_message(dead)


def test_defer_then_receive_deferred_by_sequence_number(client):
    """A deferred message is skipped by receive and fetched by its sequence number, then completed."""
    with client.get_queue_sender("defer") as sender:
        sender.send_messages([ServiceBusMessage("later"), ServiceBusMessage("now")])
    with client.get_queue_receiver("defer") as receiver:
        first, second = receiver.receive_messages(max_message_count=2, max_wait_time=5)
        receiver.defer_message(first)
        receiver.complete_message(second)
        assert receiver.receive_messages(max_wait_time=0.3) == []
        [deferred] = receiver.receive_deferred_messages([first.sequence_number])
        assert str(deferred) == "later"
        receiver.complete_message(deferred)
        assert receiver.peek_messages(max_message_count=5) == []


def test_lock_expiry_redelivers_and_old_lock_is_lost(moved_clock: MovedClock):
    """When a lock runs out the message is delivered again, and settling with the old lock fails.

    The broker's clock is moved past the lock, so the refusal is the broker's, not the SDK's own check.
    """
    client = moved_clock.client
    with client.get_queue_sender("lock-expiry") as sender:
        sender.send_messages(ServiceBusMessage("slow"))
    with client.get_queue_receiver("lock-expiry") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        moved_clock.pass_time(1.5)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(message)
        [again] = receiver.receive_messages(max_wait_time=5)
        assert again.delivery_count == 1
        receiver.complete_message(again)


def test_settling_after_the_broker_dropped_the_lock_raises_lock_lost(client):
    """If the emulator dropped a lock the client still thinks valid, complete raises MessageLockLostError.

    Here in real time, against the shared emulator: the lock runs out by the wall clock.
    """
    with client.get_queue_sender("lock-expiry") as sender:
        sender.send_messages(ServiceBusMessage("late"))
    with client.get_queue_receiver("lock-expiry") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        time.sleep(1.5)
        # Pretend the client's clock lags, so the SDK asks the emulator instead of failing on its own.
        message._expiry = message.locked_until_utc + datetime.timedelta(hours=1)
        with pytest.raises(MessageLockLostError):
            receiver.complete_message(message)
        [again] = receiver.receive_messages(max_wait_time=5)
        receiver.complete_message(again)


def test_renew_lock_extends_locked_until(client):
    """Renewing a lock moves locked-until later and the message can still be completed."""
    with client.get_queue_sender("renew") as sender:
        sender.send_messages(ServiceBusMessage("keep"))
    with client.get_queue_receiver("renew") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        before = message.locked_until_utc
        time.sleep(0.05)
        after = receiver.renew_message_lock(message)
        assert after > before
        receiver.complete_message(message)


def test_receive_and_delete_removes_on_receive(client):
    """In receive-and-delete mode a received message is already gone from the queue."""
    with client.get_queue_sender("rad") as sender:
        sender.send_messages([ServiceBusMessage("a"), ServiceBusMessage("b")])
    got = []
    with client.get_queue_receiver("rad", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE) as receiver:
        while len(got) < 2:
            batch = receiver.receive_messages(max_message_count=2, max_wait_time=3)
            assert batch
            got += batch
    assert sorted(str(m) for m in got) == ["a", "b"]
    with client.get_queue_receiver("rad") as receiver:
        assert receiver.peek_messages(max_message_count=5) == []


def test_peek_does_not_lock_or_consume(client):
    """Peek returns messages in order without locking them; a receive afterwards still gets them."""
    with client.get_queue_sender("peek") as sender:
        sender.send_messages([ServiceBusMessage("p1"), ServiceBusMessage("p2")])
    with client.get_queue_receiver("peek") as receiver:
        peeked = receiver.peek_messages(max_message_count=10)
        assert [str(m) for m in peeked] == ["p1", "p2"]
        received = receiver.receive_messages(max_message_count=2, max_wait_time=5)
        assert sorted(str(m) for m in received) == ["p1", "p2"]
        for message in received:
            receiver.complete_message(message)


def test_message_over_the_size_limit_is_refused(client):
    """A message larger than the entity allows raises MessageSizeExceededError and is not stored."""
    with client.get_queue_sender("size") as sender, pytest.raises(MessageSizeExceededError):
        sender.send_messages(ServiceBusMessage(b"x" * (300 * 1024)))
    with client.get_queue_receiver("size") as receiver:
        assert receiver.peek_messages(max_message_count=1) == []


def test_message_near_the_size_limit_arrives_intact(client):
    """A 200 KiB message, under the limit, is stored and delivered byte for byte."""
    body = bytes(range(256)) * 800
    with client.get_queue_sender("size") as sender:
        sender.send_messages(ServiceBusMessage(body))
    with client.get_queue_receiver("size") as receiver:
        [message] = receiver.receive_messages(max_wait_time=5)
        assert b"".join(message.body) == body
        receiver.complete_message(message)


def test_release_on_close_keeps_the_delivery_count(client):
    """Messages prefetched but never handed to the caller are released without a delivery-count charge."""
    with client.get_queue_sender("release") as sender:
        sender.send_messages([ServiceBusMessage(f"r{i}") for i in range(5)])
    with client.get_queue_receiver("release", prefetch_count=5) as receiver:
        [first] = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        receiver.complete_message(first)
    with client.get_queue_receiver("release") as receiver:
        rest = []
        while len(rest) < 4:
            batch = receiver.receive_messages(max_message_count=4, max_wait_time=3)
            assert batch
            rest += batch
        assert all(m.delivery_count == 0 for m in rest)
        for message in rest:
            receiver.complete_message(message)
