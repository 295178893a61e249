"""The runtime stops work on a session it lost, and keeps a session's tombstones across its holders."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import stamina
from azure.servicebus.exceptions import SessionLockLostError

from dualbus.consumers import ConsumerMetrics
from dualbus.consumers import _runtime as runtime_module
from dualbus.consumers._hold import SessionHold
from dualbus.shared.envelope import Envelope, Operation
from dualbus.shared.errors import BusError, TransientError
from dualbus.shared.maps import load_maps
from dualbus.shared.message_batches import to_batch_message
from dualbus.shared.messages import envelope_from_message, ordering_bucket

from .bus_fakes import FakeReceiver, FakeSession, Run, TwinTable, currency_message, currency_processor

MAPS = load_maps()
DELETE = Operation.DELETE


@pytest.fixture(autouse=True)
def no_waits():
    # stamina's testing mode: no waits, and at most 10 attempts (fewer when the policy says so).
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


def _ids(*messages) -> list[str]:
    return [str(m.message_id) for m in messages]


@pytest.mark.asyncio
async def test_a_lock_lost_at_settlement_stops_the_rest_of_the_batch():
    """Completion says the session is lost: no further message of the batch is applied, none is settled."""
    a1, a2, b1 = currency_message("AAA", 1), currency_message("AAA", 2), currency_message("BBB", 1)
    receiver = FakeReceiver([a1, a2, b1], FakeSession("s"), lose_on=str(a1.message_id))
    run = Run(receiver)
    run.table.hold_up.add("BBB")  # still being applied when the lock goes
    await run.until(lambda: receiver.closed and len(run.client.opened) >= 2)
    assert run.table.writes == [("AAA", 1)]
    assert receiver.settled == []
    assert run.metrics.counts["applied"] == 0


@pytest.mark.asyncio
async def test_a_failed_renewal_stops_the_batch_where_it_is():
    """A renewal failure cancels the message being applied and leaves the rest for the next holder."""
    a1, a2 = currency_message("AAA", 1), currency_message("AAA", 2)
    session = FakeSession("s")
    receiver = FakeReceiver([a1, a2], session)
    run = Run(receiver)
    run.table.hold_up.add("AAA")
    await asyncio.wait_for(run.table.started.wait(), timeout=5)
    [(renewable, failed)] = run.renewer.registered[:1]
    assert renewable is session
    await failed(session, RuntimeError("renewal refused"))
    await run.until(lambda: receiver.closed)
    assert run.table.writes == []
    assert receiver.settled == []


@pytest.mark.asyncio
async def test_a_renewal_cut_short_by_closing_a_session_let_go_is_no_loss(caplog: pytest.LogCaptureFixture):
    """Closing the receiver of a session the worker is done with fails a renewal in flight (the SDK's
    management link detaches under it): no "lock lost" warning, and a renewal failure before that is one."""
    done, working = FakeSession("done"), FakeSession("working")
    finished = FakeReceiver([currency_message("AAA", 1)], done)
    held = FakeReceiver([currency_message("BBB", 1)], working)
    run = Run(finished, held)
    run.table.hold_up.add("BBB")
    await asyncio.wait_for(run.table.started.wait(), timeout=5)
    for _ in range(500):  # the finished session's worker lets it go once its message is settled
        if finished.closed:
            break
        await asyncio.sleep(0.01)
    assert finished.closed
    failures = dict(run.renewer.registered)
    with caplog.at_level("DEBUG", logger="dualbus.consumer"):
        await failures[done](done, RuntimeError("Management Operation error occurred."))
        assert not [r for r in caplog.records if r.levelname == "WARNING" and "lock lost" in r.message]
        await failures[working](working, RuntimeError("renewal refused"))
        assert [r for r in caplog.records if r.levelname == "WARNING" and "lock lost" in r.message]
    await run.until(lambda: held.closed)
    assert ("BBB", 1) not in run.table.writes


@pytest.mark.asyncio
async def test_a_lock_whose_time_passed_applies_nothing():
    """A session whose lock time has passed (renewal stopped silently) gets no message applied."""
    session = FakeSession("s")
    session.locked_until_utc = datetime.now(UTC) - timedelta(seconds=1)
    receiver = FakeReceiver([currency_message("AAA", 1)], session)
    run = Run(receiver)
    await run.until(lambda: receiver.closed)
    assert run.table.writes == []
    assert receiver.settled == []


@pytest.mark.asyncio
async def test_a_failed_tombstone_save_loses_the_session_before_the_delete_is_settled():
    """A delete whose tombstone cannot be saved is left unsettled, and the batch stops with it."""

    class Refusing(FakeSession):
        async def set_state(self, _state):
            from dualbus.shared.errors import BusError  # noqa: PLC0415 - kept beside its one use

            raise BusError("the session lock was lost")

    gone, other = currency_message("AAA", 2, operation=DELETE), currency_message("BBB", 1)
    receiver = FakeReceiver([gone, other], Refusing("s"))
    run = Run(receiver)
    run.table.rows["AAA"] = {"dualbus_sourceversion": 1}
    run.table.hold_up.add("BBB")
    await run.until(lambda: receiver.closed)
    assert run.table.writes == [("AAA", 2)]
    assert receiver.settled == []


@pytest.mark.asyncio
async def test_an_update_delivered_again_after_its_delete_is_stale_for_the_next_holder():
    """The delete's tombstone, saved in the session's state, makes the old update stale after a restart."""
    session = FakeSession("s")
    create, update = currency_message("AAA", 1), currency_message("AAA", 2)
    gone, newer = currency_message("AAA", 3, operation=DELETE), currency_message("AAA", 4)
    first = FakeReceiver([create, update, gone], session)
    await Run(first).until(lambda: len(first.settled) == 3)
    assert session.state is not None
    # Listed as a delete's: past the state's size cap it outlasts the versions of applied changes.
    assert [key for key in json.loads(session.state)["deleted"] if "aaa" in key.lower()] != []
    again = FakeReceiver([update], session)  # redelivered to the session's next holder
    run = Run(again)
    await run.until(lambda: len(again.settled) == 1)
    assert run.metrics.counts["skipped-stale"] == 1
    assert run.table.rows == {}
    later = FakeReceiver([newer], session)
    run = Run(later)
    await run.until(lambda: len(later.settled) == 1)
    assert run.table.writes == [("AAA", 4)]
    # The re-created record's tombstone is now its newest applied version, not the delete's.
    saved = json.loads(session.state or b"{}")
    assert [version for key, (version, _) in saved["tombstones"].items() if "aaa" in key.lower()] == [4]
    assert saved["deleted"] == []


@pytest.mark.asyncio
async def test_a_state_save_waits_for_a_settlement_in_flight_on_the_same_receiver():
    """Saves and settlements take turns: the SDK hands a dead-letter's echo to a state request in flight."""

    class Watched(FakeSession):
        settling = False
        overlaps = 0

        async def set_state(self, state):
            self.overlaps += self.settling
            await super().set_state(state)

    class SlowSettler(FakeReceiver):
        async def dead_letter_message(self, message, **details):
            session.settling = True
            await asyncio.sleep(0.05)  # the echo is on its way while the other record's save is due
            session.settling = False
            await super().dead_letter_message(message, **details)

    session = Watched("s")
    bad = currency_message("BBB", 1)
    bad.content_type = "application/json"  # dead-lettered as WrongContentType, before anything is applied
    receiver = SlowSettler([bad, currency_message("AAA", 1)], session)
    run = Run(receiver)
    await run.until(lambda: len(receiver.settled) == 2)
    assert session.saves == 1
    assert session.overlaps == 0


class SlowStateSession(FakeSession):
    """A session whose state is read only when the test says so; notes whether the read was cancelled."""

    def __init__(self, state: bytes | None = None, *, failing: bool = False) -> None:
        super().__init__("s", state)
        self.release = asyncio.Event()
        self.failing = failing
        self.cancelled = False

    async def get_state(self) -> bytes | None:
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.failing:
            raise BusError("the session's state could not be read")
        return self.state


class CountingReceiver(FakeReceiver):
    """Counts its receives."""

    receives = 0

    async def receive_messages(self, **options):
        self.receives += 1
        return await super().receive_messages(**options)


async def _state_after_a_delete() -> bytes:
    """A session's state once AAA was created at version 1 and deleted at version 3."""
    session = FakeSession("s")
    first = FakeReceiver([currency_message("AAA", 1), currency_message("AAA", 3, operation=DELETE)], session)
    await Run(first).until(lambda: len(first.settled) == 2)
    assert session.state is not None
    return session.state


@pytest.mark.asyncio
async def test_a_sessions_first_messages_come_while_its_tombstones_are_read_and_wait_for_them():
    """The first receive does not wait for the session's state; no change is applied before it is read,
    so an old update of a deleted record is judged by the delete's tombstone."""
    session = SlowStateSession(await _state_after_a_delete())
    receiver = CountingReceiver([currency_message("AAA", 2)], session)
    run = Run(receiver)
    for _ in range(200):
        if receiver.receives:
            break
        await asyncio.sleep(0.01)
    assert receiver.receives >= 1  # received while the state is still being read
    await asyncio.sleep(0.05)
    assert (run.table.writes, receiver.settled) == ([], [])
    session.release.set()
    await run.until(lambda: len(receiver.settled) == 1)
    assert run.metrics.counts["skipped-stale"] == 1
    assert run.table.rows == {}


@pytest.mark.asyncio
async def test_a_session_whose_tombstones_cannot_be_read_applies_and_settles_nothing():
    """A failed read of the state lets the session go with its messages unsettled, for its next holder."""
    session = SlowStateSession(failing=True)
    session.release.set()
    receiver = FakeReceiver([currency_message("AAA", 1)], session)
    run = Run(receiver)
    await run.until(lambda: receiver.closed)
    assert (run.table.writes, receiver.settled) == ([], [])


@pytest.mark.asyncio
async def test_a_stop_while_a_sessions_tombstones_are_read_gives_its_messages_back_at_once():
    """Stopping while the state is still being read cancels the read, without waiting for the shutdown
    deadline; the messages received meanwhile are abandoned, so that they come back in order."""
    session = SlowStateSession()
    message = currency_message("AAA", 1)
    receiver = CountingReceiver([message], session)
    # Stopped once the first receive has returned, with the worker waiting for the state; the run must
    # end within Run.until's 10 s, well before the 30 s shutdown deadline.
    run = Run(receiver, shutdown_deadline=30.0)
    await run.until(lambda: not receiver.batches)
    assert session.cancelled
    assert receiver.closed
    assert run.table.writes == []
    assert receiver.settled == [("abandon", str(message.message_id))]


@pytest.mark.asyncio
async def test_a_session_let_go_dry_while_its_tombstones_are_read_stops_the_read():
    """A session that brings no message is let go with its state still being read: the read stops too."""
    session = SlowStateSession()
    receiver = FakeReceiver([], session)
    run = Run(receiver)
    await run.until(lambda: receiver.closed)
    assert session.cancelled
    assert run.table.writes == []


@pytest.mark.asyncio
async def test_a_sessions_change_met_without_its_tombstones_is_not_applied_and_the_session_goes():
    """Should a session's change reach the sink before the session's tombstones were read (the worker
    waits for them first), it is not applied unguarded: the hold is lost and the message left unsettled
    for the next holder, counted as lock-lost, not retried nor dead-lettered."""
    receiver = FakeReceiver([], FakeSession("s"))
    hold = SessionHold(cast(Any, receiver), sessionful=True)  # its tombstones never read
    table, metrics = TwinTable(), ConsumerMetrics(area="currency", direction="to-dataverse")
    processor = currency_processor(table, metrics)
    await asyncio.wait({hold.spawn(processor.process(cast(Any, currency_message("AAA", 1)), hold))})
    assert hold.lost
    assert (table.writes, receiver.settled) == ([], [])
    assert metrics.counts["lock-lost"] == 1
    assert metrics.counts["retried"] == 0


@pytest.mark.asyncio
async def test_changes_outside_a_session_pass_without_tombstones():
    """A hold of a subscription without sessions has no tombstones, and its changes are applied."""
    receiver = FakeReceiver([], FakeSession("s"))
    hold = SessionHold(cast(Any, receiver), sessionful=False)
    table, metrics = TwinTable(), ConsumerMetrics(area="currency", direction="to-dataverse")
    processor = currency_processor(table, metrics)
    await hold.spawn(processor.process(cast(Any, currency_message("AAA", 1)), hold))
    assert not hold.lost
    assert table.writes == [("AAA", 1)]
    assert [kind for kind, _ in receiver.settled] == ["complete"]


@pytest.mark.asyncio
async def test_a_lock_lost_saving_before_an_update_stops_the_batch_unsettled_without_retries():
    """The save of an update's version before its write finds the session's lock lost: the message is
    neither retried nor dead-lettered, the rest of the batch stays unapplied, and all wait, unsettled, for
    the session's next holder."""

    class LockGone(FakeSession):
        async def set_state(self, _state):
            raise SessionLockLostError(message="the session lock was lost")

    update, other = currency_message("AAA", 2), currency_message("AAA", 3)
    receiver = FakeReceiver([update, other], LockGone("s"))
    run = Run(receiver)
    run.table.rows["AAA"] = {"dualbus_sourceversion": 1}
    await run.until(lambda: receiver.closed)
    assert run.table.writes == []
    assert receiver.settled == []
    assert run.metrics.counts["lock-lost"] == 1
    assert run.metrics.counts["retried"] == 0


def _same_bucket(first: str, count: int, buckets: int = 32) -> list[str]:
    """``first`` and other currency codes sharing its ordering bucket (one batch may hold them)."""
    bucket = ordering_bucket("currency", {"CurrencyCode": first}, buckets)
    others = (f"C{n:02d}" for n in range(100))
    same = [code for code in others if ordering_bucket("currency", {"CurrencyCode": code}, buckets) == bucket]
    return [first, *same[: count - 1]]


def _currency_change(code: str, version: int) -> Envelope:
    return envelope_from_message(currency_message(code, version))


@pytest.mark.asyncio
async def test_a_lock_lost_saving_before_an_update_in_a_batch_message_stops_its_other_records():
    """In a message carrying several records' changes, the save before one record's update finds the lock
    lost: the hold is lost at once, so another record's change still under way is cancelled, not written
    after the session went to its next holder."""

    class LockGone(FakeSession):
        async def set_state(self, _state):
            # The other record's write goes on a moment after the failed save, unless it was stopped.
            asyncio.get_running_loop().call_later(0.05, run.table.release.set)
            raise SessionLockLostError(message="the session lock was lost")

    updated, waiting = _same_bucket("AAA", 2)
    batch = to_batch_message([_currency_change(updated, 2), _currency_change(waiting, 1)], buckets=32)
    receiver = FakeReceiver([batch], LockGone("s"))
    run = Run(receiver)
    run.table.rows[updated] = {"dualbus_sourceversion": 1}
    run.table.hold_up.add(waiting)  # still being applied when the lock goes
    await run.until(lambda: receiver.closed)
    assert run.table.writes == []
    assert receiver.settled == []
    assert run.metrics.counts["lock-lost"] == 1


@pytest.mark.asyncio
async def test_a_change_found_applied_already_leaves_its_tombstone():
    """A create whose answer was lost is delivered again and finds its own version in the row (stale): its
    version is kept as the record's tombstone all the same, so that a replay after the target's users
    delete the row re-creates nothing."""
    session = FakeSession("s")
    receiver = FakeReceiver([currency_message("AAA", 3)], session)
    run = Run(receiver)
    run.table.rows["AAA"] = {"dualbus_sourceversion": 3}  # written by the first delivery
    await run.until(lambda: receiver.settled)
    assert run.metrics.counts["skipped-stale"] == 1
    stones = json.loads(session.state)["tombstones"]
    assert [version for version, _at in stones.values()] == [3]


@pytest.mark.asyncio
async def test_a_session_taken_before_the_pause_state_is_known_is_let_go_and_no_more_are_taken(monkeypatch):
    """While the route's pause state cannot be read, a session taken meanwhile is let go after a grace,
    nothing of it applied, and the taker takes no other: the route's healthy replicas can work them."""
    monkeypatch.setattr(runtime_module, "_READY_GRACE_SECONDS", 0.1)
    receiver = FakeReceiver([currency_message("AAA", 1)], FakeSession("s"))
    run = Run(receiver, ready=asyncio.Event())  # never set: the control queue does not answer
    await run.until(lambda: receiver.closed)
    assert (run.table.writes, receiver.settled) == ([], [])
    assert len(run.client.opened) == 1


class _UnansweredSaves(FakeSession):
    """A session whose state saves get no answer (the link is gone without saying so)."""

    async def set_state(self, _state: bytes | None) -> None:
        self.saves += 1
        await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_a_save_before_a_write_that_gets_no_answer_loses_the_session(monkeypatch):
    """The save was cut off at its timeout, which closes the session's receiver: the hold must end there.
    It was taken for a passing failure, and the batch's other changes went on to be written on a session
    the broker had given to another consumer."""
    monkeypatch.setattr("dualbus.consumers._tombstones._STATE_TIMEOUT_SECONDS", 0.1)
    session = _UnansweredSaves("s")
    receiver = FakeReceiver([currency_message("AAA", 2), currency_message("BBB", 1)], session)
    run = Run(receiver)
    run.table.rows["AAA"] = {"dualbus_sourceversion": 1}  # an update: its version is saved before the write
    run.table.hold_up.add("BBB")  # still being applied when the save times out
    await run.until(lambda: receiver.closed)
    assert run.table.writes == []
    assert receiver.settled == []
    assert session.saves == 1


@pytest.mark.asyncio
async def test_a_retry_after_the_locks_time_passed_writes_nothing():
    """The target failed, and while the change waited to be tried again the session's lock ran out (the
    SDK's renewer stops without a word): the retry was written anyway, over the next holder's work."""
    session = FakeSession("s")
    receiver = FakeReceiver([currency_message("AAA", 1)], session)
    run = Run(receiver)
    applying = run.table.apply

    async def busy_then_applying(change):
        if run.table.started.is_set():
            return await applying(change)
        run.table.started.set()
        session.locked_until_utc = datetime.now(UTC) - timedelta(seconds=1)  # the wait outlasted the lock
        raise TransientError("the target is busy")

    run.table.apply = busy_then_applying  # type: ignore[method-assign]
    await run.until(lambda: receiver.closed)
    assert run.table.writes == []
    assert receiver.settled == []
    assert run.metrics.counts["lock-lost"] == 1
