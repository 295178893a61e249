"""The sync SDK against session-enabled queues: accept by id or next available, locks and state."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusReceivedMessage,
)
from azure.servicebus.exceptions import (
    OperationTimeoutError,
    ServiceBusError,
    SessionCannotBeLockedError,
    SessionLockLostError,
)

from dualbus.sandbox.servicebus.launcher import EmulatorThread
from tests.contract.conftest import MovedClock, quick_client

pytestmark = pytest.mark.contract


def test_session_receiver_gets_only_its_session(client: ServiceBusClient):
    """A receiver for session "a" gets a's messages in order and never b's."""
    with client.get_queue_sender("sessions") as sender:
        sender.send_messages(
            [ServiceBusMessage(f"{sid}{i}", session_id=sid) for i in range(3) for sid in ("a", "b")]
        )
    with client.get_queue_receiver("sessions", session_id="a") as receiver:
        got = receiver.receive_messages(max_message_count=10, max_wait_time=3)
        assert [str(m) for m in got] == ["a0", "a1", "a2"]
        assert all(m.session_id == "a" for m in got)
        assert receiver.session.session_id == "a"
        for message in got:
            receiver.complete_message(message)
    with client.get_queue_receiver("sessions", session_id="b") as receiver:
        got = receiver.receive_messages(max_message_count=10, max_wait_time=3)
        assert [str(m) for m in got] == ["b0", "b1", "b2"]
        for message in got:
            receiver.complete_message(message)


def test_next_available_session_is_one_with_messages(client: ServiceBusClient):
    """NEXT_AVAILABLE_SESSION locks a session that has messages and reports its id and lock time."""
    with client.get_queue_sender("sessions-next") as sender:
        sender.send_messages(ServiceBusMessage("hello", session_id="picked"))
    with client.get_queue_receiver(
        "sessions-next", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=5
    ) as receiver:
        assert receiver.session.session_id == "picked"
        assert receiver.session.locked_until_utc is not None
        [message] = receiver.receive_messages(max_wait_time=3)
        assert str(message) == "hello"
        receiver.complete_message(message)


def test_next_available_times_out_when_no_session_has_messages(emulator: EmulatorThread):
    """With no session holding messages, opening a next-available receiver raises OperationTimeoutError."""
    opened: list[object] = []
    # No retries: the SDK would otherwise retry the timeout with back-off, which is its business, not ours.
    with quick_client(emulator.connection_string, keep_alive=0, retry_total=0) as client:
        receiver = client.get_queue_receiver(
            "sessions-next", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=1
        )
        with pytest.raises(OperationTimeoutError), receiver:
            opened.append(receiver.session.session_id)
    assert opened == [], "the SDK handed back a receiver without a session"


def test_session_state_round_trips_and_lock_renews(client: ServiceBusClient):
    """Session state set by one receiver is read back by the next, and renewing moves the lock later."""
    with client.get_queue_sender("sessions-state") as sender:
        sender.send_messages(ServiceBusMessage("x", session_id="s1"))
    with client.get_queue_receiver("sessions-state", session_id="s1") as receiver:
        assert receiver.session.get_state() is None
        receiver.session.set_state(b"checkpoint-7")
        before = receiver.session.locked_until_utc
        after = receiver.session.renew_lock()
        assert after >= before
    with client.get_queue_receiver("sessions-state", session_id="s1") as receiver:
        assert receiver.session.get_state() == b"checkpoint-7"
        [message] = receiver.receive_messages(max_wait_time=3)
        receiver.complete_message(message)


def test_a_locked_session_cannot_be_accepted_twice(client: ServiceBusClient):
    """While one receiver holds a session, a second receiver for it gets SessionCannotBeLockedError."""
    with client.get_queue_sender("sessions-lock") as sender:
        sender.send_messages(ServiceBusMessage("x", session_id="held"))
    with client.get_queue_receiver("sessions-lock", session_id="held") as first:
        [message] = first.receive_messages(max_wait_time=3)
        with (
            pytest.raises(SessionCannotBeLockedError),
            client.get_queue_receiver("sessions-lock", session_id="held") as second,
        ):
            second.receive_messages(max_wait_time=1)
        first.complete_message(message)


def test_expired_session_lock_raises_session_lock_lost(moved_clock: MovedClock):
    """Once a session lock runs out, settling its message raises SessionLockLostError."""
    client = moved_clock.client
    with client.get_queue_sender("sessions-expiry") as sender:
        sender.send_messages(ServiceBusMessage("x", session_id="brief"))
    with client.get_queue_receiver("sessions-expiry", session_id="brief") as receiver:
        [message] = receiver.receive_messages(max_wait_time=3)
        moved_clock.pass_time(1.5)
        with pytest.raises(SessionLockLostError):
            receiver.complete_message(message)
    with client.get_queue_receiver("sessions-expiry", session_id="brief") as receiver:
        [again] = receiver.receive_messages(max_wait_time=3)
        assert again.delivery_count == 1
        receiver.complete_message(again)


def test_batch_with_a_session_less_message_is_refused_whole(client: ServiceBusClient):
    """A batch to a session queue with one message lacking a session id is refused and stores nothing."""
    with client.get_queue_sender("sessions-batch") as sender, pytest.raises(ServiceBusError):
        sender.send_messages([ServiceBusMessage("ok", session_id="s"), ServiceBusMessage("no session")])
    with client.get_queue_receiver("sessions-batch", session_id="s") as receiver:
        assert receiver.peek_messages(max_message_count=5) == []


def test_a_receiver_whose_session_lock_ran_out_cannot_renew_or_use_the_session_state(moved_clock: MovedClock):
    """Once another receiver took the session, the first one's state and renewal calls raise
    SessionLockLostError, and the new holder's state and lock are left as they were."""
    with moved_clock.client.get_queue_sender("sessions-taken-over") as sender:
        sender.send_messages(ServiceBusMessage("x", session_id="moved"))
    with (
        moved_clock.client.get_queue_receiver("sessions-taken-over", session_id="moved") as first,
        quick_client(moved_clock.emulator.connection_string) as other_client,
    ):
        first.session.set_state(b"first")
        moved_clock.pass_time(1.5)
        with other_client.get_queue_receiver("sessions-taken-over", session_id="moved") as second:
            second.session.set_state(b"second")
            held_until = second.session.locked_until_utc
            with pytest.raises(SessionLockLostError):
                first.session.set_state(b"stale")
            with pytest.raises(SessionLockLostError):
                first.session.get_state()
            with pytest.raises(SessionLockLostError):
                first.session.renew_lock()
            assert second.session.get_state() == b"second"
            assert second.session.renew_lock() >= held_until
            [message] = second.receive_messages(max_wait_time=3)
            second.complete_message(message)


def test_scheduling_a_session_less_message_on_a_session_queue_is_refused(client: ServiceBusClient):
    """schedule_messages is a send: to a session queue, a message without a session id is refused whole."""
    due = datetime.now(UTC) + timedelta(minutes=5)
    with client.get_queue_sender("sessions-schedule") as sender, pytest.raises(ServiceBusError):
        sender.schedule_messages(
            [ServiceBusMessage("ok", session_id="s"), ServiceBusMessage("no session")], due
        )
    with client.get_queue_receiver("sessions-schedule", session_id="s") as receiver:
        assert receiver.peek_messages(max_message_count=5) == []


def _next_session_messages(
    client: ServiceBusClient, queue: str, count: int
) -> tuple[str, list[tuple[str, int]]]:
    """Wait for the next available session of ``queue``, complete up to ``count`` of its messages as they
    arrive, and return the session id with each message's body and delivery count in arrival order."""
    with client.get_queue_receiver(queue, session_id=NEXT_AVAILABLE_SESSION, max_wait_time=10) as receiver:
        got: list[ServiceBusReceivedMessage] = []
        while len(got) < count and (batch := receiver.receive_messages(count - len(got), max_wait_time=3)):
            got += batch
        for message in got:
            receiver.complete_message(message)
        return receiver.session.session_id, [(str(m), m.delivery_count or 0) for m in got]


def _until_a_receiver_waits_for_a_session(emulator: EmulatorThread) -> None:
    """Return once a next-available receiver of ``emulator`` is waiting for a session."""
    sessions = emulator.server.bus.sessions
    deadline = time.monotonic() + 10
    while not emulator.server.call_on_loop(lambda: bool(sessions.waiters)):
        assert time.monotonic() < deadline, "the next-available receiver never started waiting"
        time.sleep(0.02)


def test_a_session_handed_over_before_its_lapsed_lock_is_processed_starts_with_the_old_holder_s_message(
    moved_clock: MovedClock,
):
    """A receiver handed a session whose lock ran out gets the old holder's unsettled message first, its
    delivery count raised by the expiry, then the next one, even when the hand-over comes in the same timer
    pass as the expiry, before the expiry itself is processed; the old holder has lost its lock."""
    with moved_clock.client.get_queue_sender("sessions-hand-over") as sender:
        sender.send_messages([ServiceBusMessage(body, session_id="s") for body in ("m1", "m2")])
        # Due inside the 60 s session lock taken below: the one clock move past both brings them into the
        # same timer pass, which activates schedules first, and this arrival hands a session to the waiting
        # receiver before the lock's expiry is processed.
        sender.schedule_messages(
            ServiceBusMessage("other", session_id="t"), datetime.now(UTC) + timedelta(seconds=30)
        )
    with (
        moved_clock.client.get_queue_receiver("sessions-hand-over", session_id="s") as first,
        quick_client(moved_clock.emulator.connection_string) as other_client,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        [m1] = first.receive_messages(max_wait_time=3)
        taken = pool.submit(_next_session_messages, other_client, "sessions-hand-over", 2)
        _until_a_receiver_waits_for_a_session(moved_clock.emulator)
        moved_clock.pass_time(90)
        session_id, got = taken.result(timeout=30)
        with pytest.raises(SessionLockLostError):
            first.complete_message(m1)
    assert session_id == "s"
    assert got == [("m1", 1), ("m2", 0)]
