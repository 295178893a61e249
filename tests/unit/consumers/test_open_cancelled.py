"""A worker cancelled while its receiver still opens (the shutdown deadline) leaves no open running alone:
the open is abandoned and its socket closed before the cancellation goes on."""

from __future__ import annotations

import asyncio
import gc

import pytest
from azure.servicebus import NEXT_AVAILABLE_SESSION
from azure.servicebus.aio import ServiceBusClient

from dualbus.consumers._runtime import _opened_unless_stopped
from tests.unit.silent_broker import SilentBroker, connection_string


@pytest.mark.asyncio
async def test_a_worker_cancelled_mid_open_closes_the_socket_and_stays_cancelled() -> None:
    broker = SilentBroker()
    server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gc.disable()  # only the open's own close may end the connection here, not a finaliser
    try:
        async with ServiceBusClient.from_connection_string(connection_string(port)) as client:
            receiver = client.get_subscription_receiver(
                "topic", "subscription", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=30
            )
            worker = asyncio.ensure_future(_opened_unless_stopped(receiver, asyncio.Event()))
            await asyncio.wait_for(broker.header_read.wait(), timeout=10)

            worker.cancel()

            with pytest.raises(asyncio.CancelledError):
                await worker
            await asyncio.wait_for(broker.hung_up.wait(), timeout=5)
    finally:
        gc.enable()
        for writer in broker.writers:
            writer.close()
        server.close()
        await server.wait_closed()
