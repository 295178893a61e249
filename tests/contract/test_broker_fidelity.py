"""The sync SDK against broker rules applied out of the sender's sight: TTL ceilings, session-less messages
on session subscriptions, duplicate detection of scheduled messages, and the number an activated
scheduled message takes."""

from __future__ import annotations

import datetime
import pathlib

import pytest
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceivedMessage,
    ServiceBusReceiver,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import OperationTimeoutError

from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from tests.contract.conftest import MovedClock, ShiftedClock, contract_config, quick_client

pytestmark = pytest.mark.contract


def _receive_all(receiver: ServiceBusReceiver, expected: int) -> list[ServiceBusReceivedMessage]:
    """Receive and complete ``expected`` messages in arrival order, then check that nothing more waits."""
    got: list[ServiceBusReceivedMessage] = []
    while len(got) < expected:
        batch = receiver.receive_messages(max_message_count=expected - len(got), max_wait_time=3)
        assert batch, f"only {len(got)} of {expected} messages arrived"
        got += batch
    got += receiver.receive_messages(max_message_count=10, max_wait_time=0.3)
    for message in got:
        receiver.complete_message(message)
    return got


def _soon(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


def test_a_topic_s_default_time_to_live_caps_a_longer_one_of_its_subscription(moved_clock: MovedClock):
    """A message outliving its topic's default TTL expires from a subscription whose own TTL is longer."""
    client = moved_clock.client
    with client.get_topic_sender("ttl-ceiling") as sender:
        sender.send_messages(ServiceBusMessage("stale"))
    moved_clock.pass_time(1.3)
    with client.get_subscription_receiver("ttl-ceiling", "long-lived") as receiver:
        assert receiver.receive_messages(max_wait_time=0.3) == []
    with client.get_subscription_receiver(
        "ttl-ceiling", "long-lived", sub_queue=ServiceBusSubQueue.DEAD_LETTER
    ) as dlq:
        [dead] = _receive_all(dlq, 1)
    assert (str(dead), dead.dead_letter_reason) == ("stale", "TTLExpiredException")


def test_a_forwarding_queue_s_default_time_to_live_follows_the_message(moved_clock: MovedClock):
    """A message forwarded on by a queue keeps that queue's default TTL as a ceiling in the target."""
    client = moved_clock.client
    with client.get_queue_sender("ttl-forward-source") as sender:
        sender.send_messages(ServiceBusMessage("stale"))
    moved_clock.pass_time(1.3)
    with client.get_queue_receiver("ttl-forward-target") as receiver:
        assert receiver.receive_messages(max_wait_time=0.3) == []
    with client.get_queue_receiver("ttl-forward-target", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        [dead] = _receive_all(dlq, 1)
    assert (str(dead), dead.dead_letter_reason) == ("stale", "TTLExpiredException")


def test_a_session_less_message_is_dead_lettered_by_a_subscription_that_requires_sessions(
    emulator: EmulatorThread,
):
    """A topic's message without a session id goes to the dead-letter queue of its session subscription,
    with Azure's reason, and is delivered as usual to a subscription without sessions."""
    # No retries: the next-available receiver's timeout is the expected outcome, not worth retrying.
    with quick_client(emulator.connection_string, retry_total=0) as client:
        with client.get_topic_sender("session-split") as sender:
            sender.send_messages(ServiceBusMessage("no session"))
        with client.get_subscription_receiver("session-split", "plain") as receiver:
            assert [str(m) for m in _receive_all(receiver, 1)] == ["no session"]
        with client.get_subscription_receiver(
            "session-split", "sessions", sub_queue=ServiceBusSubQueue.DEAD_LETTER
        ) as dlq:
            [dead] = _receive_all(dlq, 1)
        assert (str(dead), dead.dead_letter_reason, dead.dead_letter_error_description) == (
            "no session",
            "Session id is null.",
            "Session enabled entity doesn't allow a message whose session identifier is null.",
        )
        _assert_no_session_has_messages(client)


def _assert_no_session_has_messages(client: ServiceBusClient) -> None:
    receiver = client.get_subscription_receiver(
        "session-split", "sessions", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=1
    )
    with pytest.raises(OperationTimeoutError), receiver:
        pytest.fail(f"a next-available receiver got session {receiver.session.session_id!r}")


def test_a_send_repeating_a_scheduled_message_s_id_is_dropped(moved_clock: MovedClock):
    """Scheduled messages take part in duplicate detection: a later send of the same message id is dropped."""
    client = moved_clock.client
    with client.get_queue_sender("dedup-schedule") as sender:
        sender.schedule_messages(ServiceBusMessage("scheduled", message_id="dup"), _soon(1))
        sender.send_messages(ServiceBusMessage("sent", message_id="dup"))
    moved_clock.pass_time(1.5)
    with client.get_queue_receiver("dedup-schedule") as receiver:
        assert [str(m) for m in _receive_all(receiver, 1)] == ["scheduled"]


def test_a_schedule_repeating_a_sent_message_s_id_is_dropped(moved_clock: MovedClock):
    """Scheduled messages take part in duplicate detection: a later schedule of the same message id is
    dropped, and nothing arrives at its time."""
    client = moved_clock.client
    with client.get_queue_sender("dedup-schedule") as sender:
        sender.send_messages(ServiceBusMessage("sent", message_id="dup"))
        sender.schedule_messages(ServiceBusMessage("scheduled", message_id="dup"), _soon(1))
    moved_clock.pass_time(1.5)
    with client.get_queue_receiver("dedup-schedule") as receiver:
        assert [str(m) for m in _receive_all(receiver, 1)] == ["sent"]


def test_an_activated_scheduled_message_queues_behind_messages_sent_while_it_waited(moved_clock: MovedClock):
    """A scheduled message becomes active under a new, higher sequence number, so within its session it
    comes after a message sent while it waited."""
    client = moved_clock.client
    with client.get_queue_sender("sessions-sequence") as sender:
        [scheduled] = sender.schedule_messages(ServiceBusMessage("m1", session_id="s"), _soon(2))
        sender.send_messages(ServiceBusMessage("m2", session_id="s"))
    moved_clock.pass_time(2.5)
    with client.get_queue_receiver("sessions-sequence", session_id="s") as receiver:
        first, second = _receive_all(receiver, 2)
    assert [str(first), str(second)] == ["m2", "m1"]
    assert second.sequence_number > first.sequence_number > scheduled


def test_an_activated_scheduled_message_keeps_its_new_number_across_a_restart(tmp_path: pathlib.Path):
    """The store holds an activated scheduled message under its new number only: after a restart it
    arrives once, under that number."""
    clock = ShiftedClock()
    with (
        start_in_process(config=contract_config(), data_dir=tmp_path, clock=clock) as first,
        quick_client(first.connection_string) as client,
    ):
        with client.get_queue_sender("schedule") as sender:
            [scheduled] = sender.schedule_messages(ServiceBusMessage("timed"), _soon(1))
        clock.offset += 1.5
        first.server.run_timers()
        with client.get_queue_receiver("schedule") as receiver:
            [active] = receiver.peek_messages(max_message_count=5)
    assert active.sequence_number > scheduled
    with (
        start_in_process(config=contract_config(), data_dir=tmp_path, clock=clock) as second,
        quick_client(second.connection_string) as client,
        client.get_queue_receiver("schedule") as receiver,
    ):
        [arrived] = _receive_all(receiver, 1)
    assert (str(arrived), arrived.sequence_number) == ("timed", active.sequence_number)
