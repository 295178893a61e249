"""A held session's messages are queued by record across batches: a record's changes stay in order, and a
change of another record never waits for them (the worker receives the next batch meanwhile)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import orjson
import pytest

from dualbus.consumers._hold import SessionHold
from dualbus.consumers._record_queues import RecordQueues

from .bus_fakes import FakeReceiver, FakeSession, Run, currency_message


@dataclass
class Msg:
    body: object
    label: str


def _msg(code: str, label: str) -> Msg:
    return Msg(body=orjson.dumps({"entity": "Currencies", "key": {"CurrencyCode": code}}), label=label)


def _batch_body(label: str) -> Msg:
    """A body holding many changes (a batch message): its records are not known before it is read."""
    return Msg(body=orjson.dumps([{"entity": "Currencies", "key": {"CurrencyCode": "X"}}]), label=label)


class Worked:
    """Works each group by labels, in order; a label in ``gates`` waits until its gate is opened."""

    def __init__(self, *held: str) -> None:
        self.gates = {label: asyncio.Event() for label in held}
        self.started: list[str] = []
        self.finished: list[str] = []

    async def __call__(self, group: list[Any]) -> None:
        for message in group:
            self.started.append(message.label)
            if message.label in self.gates:
                await self.gates[message.label].wait()
            self.finished.append(message.label)


def _queues(worked: Worked) -> RecordQueues:
    return RecordQueues(SessionHold(cast(Any, None), sessionful=False), worked)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_a_later_batch_of_one_record_waits_for_its_earlier_change_while_others_go_on():
    worked = Worked("eur-1")
    queues = _queues(worked)
    queues.add(cast(Any, [_msg("EUR", "eur-1"), _msg("USD", "usd-1")]))
    queues.add(cast(Any, [_msg("EUR", "eur-2"), _msg("GBP", "gbp-1")]))
    await _settle()
    assert worked.finished == ["usd-1", "gbp-1"]
    assert "eur-2" not in worked.started
    assert queues.in_hand == 2
    worked.gates["eur-1"].set()
    await queues.finish()
    assert worked.finished == ["usd-1", "gbp-1", "eur-1", "eur-2"]
    assert queues.in_hand == 0


@pytest.mark.asyncio
async def test_a_batch_body_waits_for_everything_before_it_and_holds_back_everything_after():
    worked = Worked("eur-1", "many")
    queues = _queues(worked)
    queues.add(cast(Any, [_msg("EUR", "eur-1")]))
    queues.add(cast(Any, [_batch_body("many"), _msg("USD", "usd-in-the-body's-batch")]))
    queues.add(cast(Any, [_msg("GBP", "gbp-after")]))
    await _settle()
    assert worked.started == ["eur-1"]
    worked.gates["eur-1"].set()
    await _settle()
    assert worked.started == ["eur-1", "many"]
    worked.gates["many"].set()
    await queues.finish()
    assert worked.finished == ["eur-1", "many", "usd-in-the-body's-batch", "gbp-after"]


@pytest.mark.asyncio
async def test_an_error_in_one_record_stops_the_others_and_is_raised():
    worked = Broken("slow")
    queues = _queues(worked)
    queues.add(cast(Any, [_msg("EUR", "slow"), _msg("USD", "bad")]))
    await _settle()
    assert isinstance(queues.failure, RuntimeError)
    with pytest.raises(RuntimeError, match="a bug"):
        await queues.finish()
    assert worked.finished == []  # the slow record was stopped where it was


class Broken(Worked):
    """Raises (a bug) on a message labelled ``bad``."""

    async def __call__(self, group: list[Any]) -> None:
        if group[0].label == "bad":
            self.started.append("bad")
            raise RuntimeError("a bug")
        await super().__call__(group)


@pytest.mark.asyncio
async def test_after_an_error_no_later_message_of_its_record_starts_and_the_others_stop_at_once():
    """The failed message stays unsettled, so its record's later change must not overtake it: the session's
    next holder gets both, in order. The worker may be in a receive when the error comes: nothing else
    starts meanwhile either."""
    worked = Broken("usd-held", "gbp-held")
    queues = _queues(worked)
    queues.add(cast(Any, [_msg("EUR", "bad"), _msg("USD", "usd-held")]))
    queues.add(cast(Any, [_msg("EUR", "eur-2"), _msg("GBP", "gbp-held")]))
    queues.add(cast(Any, [_batch_body("many")]))
    await _settle()
    assert isinstance(queues.failure, RuntimeError)
    assert worked.started == ["bad", "usd-held", "gbp-held"]  # eur-2 and the batch body never start
    assert worked.finished == []  # the held ones were stopped where they were
    with pytest.raises(RuntimeError, match="a bug"):
        await queues.finish()
    assert queues.in_hand == 0


@pytest.mark.asyncio
async def test_the_next_batch_is_received_and_applied_while_a_record_of_the_one_before_is_held_up():
    """Before, a session's next batch was received only once every message of the one before was done."""
    aaa, bbb = currency_message("AAA", 1), currency_message("BBB", 1)
    receiver = FakeReceiver([aaa], FakeSession("s"), later=([bbb],))
    run = Run(receiver, others_free=False)  # kept: no other session waits for the worker
    run.table.hold_up.add("AAA")
    await run.until(lambda: ("BBB", 1) in run.table.writes)
    assert run.table.writes == [("BBB", 1)]  # AAA was still held up when BBB was written


@pytest.mark.asyncio
async def test_no_more_is_received_while_a_batch_size_of_messages_is_in_hand():
    """With a batch size of 2 and both messages of the first batch held up, nothing more is received."""
    first = [currency_message("AAA", 1), currency_message("BBB", 1)]
    receiver = FakeReceiver(first, FakeSession("s"), later=([currency_message("CCC", 1)],))
    run = Run(receiver, others_free=False, batch_size=2)
    run.table.hold_up |= {"AAA", "BBB"}
    await asyncio.wait_for(run.table.started.wait(), timeout=5)
    await asyncio.sleep(0.2)  # time for several receives, were any allowed
    assert run.table.writes == []
    assert len(receiver.batches) == 1  # CCC's batch is still the broker's
    run.table.release.set()
    await run.until(lambda: ("CCC", 1) in run.table.writes)
    assert sorted(run.table.writes) == [("AAA", 1), ("BBB", 1), ("CCC", 1)]


@pytest.mark.asyncio
async def test_a_lost_lock_stops_the_messages_in_hand_of_every_batch():
    """Messages of two batches are in hand (the second's BBB waits behind AAA, held up): a renewal failure
    stops them all, none is applied or settled, and the session goes to its next holder."""
    session = FakeSession("s")
    first, second = [currency_message("AAA", 1)], [currency_message("AAA", 2), currency_message("BBB", 1)]
    receiver = FakeReceiver(first, session, later=(second,))
    run = Run(receiver, others_free=False)
    run.table.hold_up |= {"AAA", "BBB"}
    for _ in range(200):  # until the second batch is in hand too, received while AAA 1 is held up
        if not receiver.batches:
            break
        await asyncio.sleep(0.01)
    assert not receiver.batches
    assert run.table.writes == []
    [(renewable, failed)] = run.renewer.registered[:1]
    await failed(renewable, RuntimeError("renewal refused"))
    await run.until(lambda: receiver.closed)
    assert run.table.writes == []
    assert receiver.settled == []
