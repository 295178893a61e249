"""A worker cancelled while its receiver still opens (the shutdown deadline) leaves no open running alone:
the open is abandoned and its socket closed before the cancellation goes on."""

from __future__ import annotations

import asyncio

import pytest

from dualbus.consumers._runtime import _opened_unless_stopped
from tests.unit.silent_broker import silent_session_receiver


@pytest.mark.asyncio
async def test_a_worker_cancelled_mid_open_closes_the_socket_and_stays_cancelled() -> None:
    async with silent_session_receiver() as (broker, receiver):
        worker = asyncio.ensure_future(_opened_unless_stopped(receiver, asyncio.Event(), 1.0))
        await asyncio.wait_for(broker.header_read.wait(), timeout=10)

        worker.cancel()

        with pytest.raises(asyncio.CancelledError):
            await worker
        await asyncio.wait_for(broker.hung_up.wait(), timeout=5)
