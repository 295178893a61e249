"""Sessions taken ahead of the workers: at most ``ahead`` of them, worked by whichever worker is free, let
go unworked on pause or stop; a worker keeps its session after a short batch only while no other waits."""

from __future__ import annotations

import asyncio

import pytest
import stamina
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusConnectionError

from dualbus.consumers._runtime import RuntimeOptions
from dualbus.consumers._supply import Supply
from dualbus.shared.retry import RetryPolicy

from .bus_fakes import FakeReceiver, FakeSession, Run, currency_message

_WITHIN = 5.0


@pytest.fixture(autouse=True)
def no_waits():
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


class _Taking:
    """Takes sessions named 1, 2, 3…, each when the test lets it (``give``)."""

    def __init__(self) -> None:
        self.asked = 0
        self.given: asyncio.Queue[str | None] = asyncio.Queue()
        self.released: list[str] = []

    async def take(self) -> str | None:
        self.asked += 1
        return await self.given.get()

    async def release(self, session: str) -> None:
        self.released.append(session)


async def _settle() -> None:
    """Let every task run as far as it can without waiting on anything outside."""
    for _ in range(50):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_takers_hold_at_most_ahead_sessions_until_a_worker_gets_one() -> None:
    taking, stop = _Taking(), asyncio.Event()
    supply: Supply[str] = Supply(ahead=2, release=taking.release)
    takers = [asyncio.create_task(supply.take_with(taking.take, stop)) for _ in range(3)]
    await _settle()
    assert taking.asked == 2  # the third waits for room
    for name in ("s1", "s2"):
        taking.given.put_nowait(name)
    await _settle()
    assert not supply.empty
    async with asyncio.timeout(_WITHIN):
        assert await supply.next(stop) == "s1"  # the first taken is worked first
    await _settle()
    assert taking.asked == 3  # its room went to the third taker
    taking.given.put_nowait("s3")
    async with asyncio.timeout(_WITHIN):
        await asyncio.gather(*takers)
        assert await supply.next(stop) == "s2"
        assert await supply.next(stop) == "s3"
    assert supply.empty


@pytest.mark.asyncio
async def test_a_look_that_found_no_session_gives_its_room_back() -> None:
    taking, stop = _Taking(), asyncio.Event()
    supply: Supply[str] = Supply(ahead=1, release=taking.release)
    taking.given.put_nowait(None)
    taking.given.put_nowait("s1")
    async with asyncio.timeout(_WITHIN):
        await supply.take_with(taking.take, stop)
        await supply.take_with(taking.take, stop)
        assert await supply.next(stop) == "s1"


@pytest.mark.asyncio
async def test_stop_ends_the_waits_for_room_and_for_a_session() -> None:
    taking, stop = _Taking(), asyncio.Event()
    supply: Supply[str] = Supply(ahead=1, release=taking.release)
    taking.given.put_nowait("s1")
    await supply.take_with(taking.take, stop)
    waiting_for_room = asyncio.create_task(supply.take_with(taking.take, stop))
    stop.set()
    async with asyncio.timeout(_WITHIN):
        await waiting_for_room
    assert taking.asked == 1
    # A worker asking after the stop gets nothing; the taken session is still there, for release_all.
    assert await Supply(ahead=1, release=taking.release).next(stop) is None
    await supply.release_all()
    assert taking.released == ["s1"]
    assert supply.empty


@pytest.mark.asyncio
async def test_release_all_lets_every_waiting_session_go_and_makes_room() -> None:
    taking, stop = _Taking(), asyncio.Event()
    supply: Supply[str] = Supply(ahead=2, release=taking.release)
    for name in ("s1", "s2"):
        taking.given.put_nowait(name)
        await supply.take_with(taking.take, stop)
    await supply.release_all()
    assert taking.released == ["s1", "s2"]
    taking.given.put_nowait("s3")
    async with asyncio.timeout(_WITHIN):
        await supply.take_with(taking.take, stop)
        assert await supply.next(stop) == "s3"


@pytest.mark.asyncio
async def test_the_next_session_is_opened_while_one_is_worked() -> None:
    """One worker: while its session's change is still being applied, the next session is already open."""
    first = FakeReceiver([currency_message("AAA", 1)], FakeSession("a"))
    second = FakeReceiver([currency_message("BBB", 1)], FakeSession("b"))
    run = Run(first, second)
    run.table.hold_up.add("AAA")
    async with asyncio.timeout(_WITHIN):
        await run.table.started.wait()
        await second.opened.wait()
    assert run.table.writes == []
    run.table.release.set()
    await run.until(lambda: len(run.table.writes) == 2)
    assert sorted(run.table.writes) == [("AAA", 1), ("BBB", 1)]


@pytest.mark.asyncio
async def test_no_session_is_looked_for_beyond_the_topics_buckets() -> None:
    """A topic of one bucket has one session: while it is worked, no second receiver looks for another,
    however many workers there are."""
    first = FakeReceiver([currency_message("AAA", 1)], FakeSession("a"))
    second = FakeReceiver([currency_message("BBB", 1)], FakeSession("a"))
    run = Run(first, second, buckets=1, concurrency=2)
    run.table.hold_up.add("AAA")
    async with asyncio.timeout(_WITHIN):
        await run.table.started.wait()
    await _settle()
    assert not second.opened.is_set()
    run.table.release.set()
    await run.until(lambda: len(run.table.writes) == 2)
    assert second.opened.is_set()


@pytest.mark.asyncio
async def test_a_worker_whose_session_broke_frees_its_slot_before_its_backoff() -> None:
    """One bucket: a session whose connection broke is let go at once, and another receiver takes the
    bucket's session while the worker that lost it waits out its backoff (30 s here), not after."""

    class Broken(FakeReceiver):
        async def receive_messages(self, **_: object) -> list[ServiceBusMessage]:
            raise ServiceBusConnectionError(message="the connection broke")

    first = Broken([], FakeSession("a"))
    second = FakeReceiver([currency_message("BBB", 1)], FakeSession("a"))
    slow = RetryPolicy(on=(Exception,), attempts=None, initial_wait=30.0, jitter=0.0)
    with stamina.set_testing(False):
        run = Run(first, second, buckets=1, concurrency=2, reconnect=slow)
        async with asyncio.timeout(_WITHIN):
            await second.opened.wait()
        await run.until(lambda: ("BBB", 1) in run.table.writes)
    assert first.closed


@pytest.mark.asyncio
async def test_no_more_looks_wait_at_once_than_allowed() -> None:
    """``looks`` caps the looks under way, however much room and how many slots there are; a look that
    ends frees its place for the next."""
    taking, stop = _Taking(), asyncio.Event()
    supply: Supply[str] = Supply(ahead=4, release=taking.release, most=4, looks=2)
    takers = [asyncio.create_task(supply.take_with(taking.take, stop)) for _ in range(4)]
    await _settle()
    assert taking.asked == 2
    taking.given.put_nowait("s1")
    await _settle()
    assert taking.asked == 3  # s1 waits for a worker; its look is over
    for name in ("s2", "s3", "s4"):
        taking.given.put_nowait(name)
    async with asyncio.timeout(_WITHIN):
        await asyncio.gather(*takers)
    assert taking.asked == 4


@pytest.mark.asyncio
async def test_a_session_is_kept_after_a_short_batch_while_no_other_session_is_free() -> None:
    """No other session comes: the next change of the session is received by the same receiver."""
    later = currency_message("AAA", 2)
    receiver = FakeReceiver([currency_message("AAA", 1)], FakeSession("a"), later=([], [later]))
    run = Run(receiver, others_free=False)
    await run.until(lambda: len(run.table.writes) == 2)
    assert run.table.writes == [("AAA", 1), ("AAA", 2)]
    assert [outcome for outcome, _ in receiver.settled] == ["complete", "complete"]


@pytest.mark.asyncio
async def test_a_session_is_let_go_after_a_short_batch_when_another_one_waits() -> None:
    """Another session is taken: the short batch's session goes, its later messages wait for a next holder."""
    later = currency_message("AAA", 2)
    receiver = FakeReceiver([currency_message("AAA", 1)], FakeSession("a"), later=([later],))
    other = FakeReceiver([currency_message("BBB", 1)], FakeSession("b"))
    run = Run(receiver, other)
    await run.until(lambda: len(run.table.writes) == 2 and receiver.closed)
    assert sorted(run.table.writes) == [("AAA", 1), ("BBB", 1)]
    assert receiver.batches == [[later]]  # never received: left in the session


@pytest.mark.asyncio
async def test_a_session_just_taken_is_not_let_go_for_another_after_one_empty_look() -> None:
    """Its first message comes on the third look: the holder that took it still applies it, though another
    session waits meanwhile (let go after the first empty look, the take was wasted)."""
    first = currency_message("AAA", 1)
    receiver = FakeReceiver([], FakeSession("a"), later=([], [first]))
    other = FakeReceiver([currency_message("BBB", 1)], FakeSession("b"))
    run = Run(receiver, other)
    await run.until(lambda: len(run.table.writes) == 2)
    assert sorted(run.table.writes) == [("AAA", 1), ("BBB", 1)]
    assert ("complete", str(first.message_id)) in receiver.settled


@pytest.mark.asyncio
async def test_a_session_just_taken_that_brings_nothing_is_let_go_for_another_after_its_first_look() -> None:
    """A session that brings nothing within ``first_look`` goes while another waits, before ``idle_wait``."""
    receiver = FakeReceiver([], FakeSession("a"), later=([],) * 200)
    other = FakeReceiver([currency_message("BBB", 1)], FakeSession("b"))
    run = Run(receiver, other, idle_wait=30.0)
    await run.until(lambda: receiver.closed and run.table.writes == [("BBB", 1)])
    # Its looks waited first_look in all (a look or two of dry_look before the other came, then kept_look's):
    # not one look, and not idle_wait's 30 s.
    assert sum(receiver.waits) == pytest.approx(RuntimeOptions().first_look)
    assert len(receiver.waits) > 1


@pytest.mark.asyncio
async def test_no_more_sessions_are_looked_for_than_the_topic_has_beside_those_being_worked() -> None:
    """``most`` counts looks, waiting sessions and worked ones together: a worked session's slot comes free
    only when its worker let it go; one let go unworked frees its slot too."""
    taking, stop = _Taking(), asyncio.Event()
    supply: Supply[str] = Supply(ahead=3, release=taking.release, most=2)
    takers = [asyncio.create_task(supply.take_with(taking.take, stop)) for _ in range(3)]
    await _settle()
    assert taking.asked == 2  # room for three, but the topic has two sessions
    taking.given.put_nowait("s1")
    taking.given.put_nowait("s2")
    async with asyncio.timeout(_WITHIN):
        assert await supply.next(stop) == "s1"
    await _settle()
    assert taking.asked == 2  # s1 is being worked: still no slot free
    supply.finished()
    await _settle()
    assert taking.asked == 3
    taking.given.put_nowait(None)  # the third look found nothing, and gives its slot back
    async with asyncio.timeout(_WITHIN):
        await asyncio.gather(*takers)
    await supply.release_all()  # s2 let go unworked
    assert taking.released == ["s2"]
    again = [asyncio.create_task(supply.take_with(taking.take, stop)) for _ in range(3)]
    await _settle()
    assert taking.asked == 5  # both slots free again
    stop.set()
    for _ in again:
        taking.given.put_nowait(None)
    async with asyncio.timeout(_WITHIN):
        await asyncio.gather(*again)


@pytest.mark.asyncio
async def test_a_kept_session_is_asked_for_one_message_then_for_what_its_receiver_holds() -> None:
    """Asked for a batch, the SDK hands it over only at the end of the look; asked for one message, as it
    comes. So a look asks for one, waiting up to ``dry_look`` while no other session waits, and then takes
    the rest of what the prefetch brought without a wait: all three changes are applied."""
    messages = [currency_message(code, 1) for code in ("AAA", "BBB", "CCC")]
    receiver = FakeReceiver(messages, FakeSession("a"))
    run = Run(receiver)
    await run.until(lambda: len(run.table.writes) == 3)
    options = RuntimeOptions()
    first, then = receiver.asked[:2]
    assert first == (1, options.dry_look)
    assert then[0] == options.batch_size - 1
    assert then[1] < 1e-6  # what it holds, no wait on the connection
