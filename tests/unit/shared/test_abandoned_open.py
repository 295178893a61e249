"""A receiver's open cut off mid-handshake closes its socket (``bus_calls.abandon_open``).

The real SDK connects to a loopback server that accepts the connection, reads the AMQP header and never
answers, so the open hangs where the SDK's own close would leave the socket open (no AMQP session yet).
"""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
from azure.servicebus import NEXT_AVAILABLE_SESSION
from azure.servicebus.aio import ServiceBusClient

from dualbus.shared.bus_calls import abandon_open, open_receiver
from tests.unit.silent_broker import SilentBroker, connection_string


@pytest.mark.asyncio
async def test_an_open_cut_off_mid_handshake_closes_its_socket() -> None:
    broker = SilentBroker()
    server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = connection_string(port)
    # A forgotten socket is closed by a finaliser, warning as it does so, at a moment of the collector's
    # choosing; kept out of the way, only the reference count frees it: once the open's last holder lets go.
    gc.disable()
    try:
        async with ServiceBusClient.from_connection_string(connection) as client:
            receiver = client.get_subscription_receiver(
                "topic", "subscription", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=30
            )
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
    finally:
        gc.enable()
        for writer in broker.writers:
            writer.close()
        server.close()
        await server.wait_closed()
