"""The hold saves the tombstones a message's changes left before it settles the message, once for many."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest

from dualbus.consumers._hold import SessionHold
from dualbus.consumers._tombstones import Tombstones
from dualbus.shared.bus import LockLostError
from dualbus.shared.errors import BusError

from .bus_fakes import FakeReceiver, FakeSession, currency_message

TTL = timedelta(days=14)


class Watched(FakeReceiver):
    """Records, at each settlement, how many saves of the session state were made before it."""

    def __init__(self, session: FakeSession) -> None:
        super().__init__([], session)
        self.saves_at_settlement: list[int] = []

    async def complete_message(self, message: Any) -> None:
        self.saves_at_settlement.append(self.session.saves)
        await super().complete_message(message)

    async def dead_letter_message(self, message: Any, **details: Any) -> None:
        self.saves_at_settlement.append(self.session.saves)
        await super().dead_letter_message(message, **details)


class Failing(FakeSession):
    async def set_state(self, state: bytes | None) -> None:
        del state  # never saved
        raise BusError("the session lock was lost")


async def _hold(session: FakeSession) -> tuple[SessionHold, Watched]:
    receiver = Watched(session)
    hold = SessionHold(cast(Any, receiver), sessionful=True)
    hold.tombstones = await Tombstones.load(cast(Any, session), ttl=TTL, turn=hold.state_turn)
    return hold, receiver


@pytest.mark.asyncio
async def test_changes_are_saved_once_before_the_settlement() -> None:
    session = FakeSession("s")
    hold, receiver = await _hold(session)
    assert hold.tombstones is not None
    for n in range(50):  # the changes of one batch message
        await hold.tombstones.bury(f"k{n}", n, save=False)
    assert session.saves == 0
    await hold.complete_message(currency_message("USD", 1))
    assert receiver.saves_at_settlement == [1]
    await hold.complete_message(currency_message("EUR", 1))  # nothing new to save
    assert session.saves == 1
    again = await Tombstones.load(cast(Any, session), ttl=TTL)
    assert again.version("k49") == 49


@pytest.mark.asyncio
async def test_a_dead_letter_saves_first_and_does_not_wait_on_itself() -> None:
    """The save and the dead-letter take the same turn: one after the other, never one inside the other."""
    session = FakeSession("s")
    hold, receiver = await _hold(session)
    assert hold.tombstones is not None
    await hold.tombstones.bury("k", 1, save=False)
    await asyncio.wait_for(hold.dead_letter_message(currency_message("USD", 1), reason="R"), timeout=5)
    assert receiver.saves_at_settlement == [1]
    assert receiver.settled[0][0] == "dead-letter"


@pytest.mark.asyncio
async def test_a_failed_save_leaves_the_message_unsettled_and_the_hold_lost() -> None:
    session = Failing("s")
    hold, receiver = await _hold(session)
    assert hold.tombstones is not None
    await hold.tombstones.bury("k", 1, save=False)
    with pytest.raises(LockLostError):
        await hold.complete_message(currency_message("USD", 1))
    assert receiver.settled == []
    assert hold.lost
