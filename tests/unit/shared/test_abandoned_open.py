"""A receiver's open cut off mid-handshake closes its socket (``bus_calls.abandon_open``).

The real SDK connects to a loopback server that accepts the connection, reads the AMQP header and never
answers, so the open hangs where the SDK's own close would leave the socket open (no AMQP session yet).
"""

from __future__ import annotations

import asyncio
import warnings

import pytest

from dualbus.shared.bus_calls import abandon_open, open_receiver, read_session_state
from tests.unit.silent_broker import silent_session_receiver


@pytest.mark.asyncio
async def test_an_open_cut_off_mid_handshake_closes_its_socket() -> None:
    async with silent_session_receiver() as (broker, receiver):
        opening = asyncio.ensure_future(open_receiver(receiver))
        await asyncio.wait_for(broker.header_read.wait(), timeout=10)
        assert not opening.done()

        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            await abandon_open(receiver, opening)
            del receiver, opening
            await asyncio.wait_for(broker.hung_up.wait(), timeout=5)

        # Closed in order: no stream or transport was left for its finaliser to close (and warn about).
        assert [w.message for w in warned if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.asyncio
async def test_a_session_state_call_cut_off_while_it_reopens_closes_its_socket() -> None:
    """The SDK reopens a receiver whose handler is down to read its session's state; a read cancelled in
    that reopen (its session's hold ended) closes the socket the reopen made, and stays cancelled."""
    async with silent_session_receiver("s-1") as (broker, receiver):
        reading = asyncio.ensure_future(read_session_state(receiver.session))
        await asyncio.wait_for(broker.header_read.wait(), timeout=10)

        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            reading.cancel()
            with pytest.raises(asyncio.CancelledError):
                await reading
            del receiver, reading
            await asyncio.wait_for(broker.hung_up.wait(), timeout=5)

        assert [w.message for w in warned if issubclass(w.category, ResourceWarning)] == []
