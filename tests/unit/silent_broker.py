"""A loopback server that takes AMQP connections and never answers: an open hangs mid-handshake."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from azure.servicebus import NEXT_AVAILABLE_SESSION
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver


class SilentBroker:
    """Accepts connections and reads whatever comes, answering nothing; notes when a client hangs up."""

    def __init__(self) -> None:
        self.header_read = asyncio.Event()
        self.hung_up = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.connection_string = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if await reader.read(8):  # the protocol header the SDK sends first
            self.header_read.set()
        await reader.read()  # until the client's end of the stream
        self.hung_up.set()


@asynccontextmanager
async def silent_broker() -> AsyncIterator[SilentBroker]:
    """A running SilentBroker; its ``connection_string`` is the emulator's form (plain AMQP, a SAS key it
    never reads).

    The garbage collector stays off meanwhile: a forgotten socket is closed by a finaliser, warning as it
    does so, at a moment of the collector's choosing, and what the tests check is that the code under test
    closes it; only the reference count frees it then, once its last holder lets go.
    """
    broker = SilentBroker()
    server = await asyncio.start_server(broker.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    broker.connection_string = (
        f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=k;SharedAccessKey=k;UseDevelopmentEmulator=true"
    )
    gc.disable()
    try:
        yield broker
    finally:
        gc.enable()
        for writer in broker.writers:
            writer.close()
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def silent_session_receiver(
    session_id: str | None = None,
) -> AsyncIterator[tuple[SilentBroker, ServiceBusReceiver]]:
    """A running SilentBroker and a real SDK session receiver on it (the next available session, or
    ``session_id``), not opened yet."""
    async with (
        silent_broker() as broker,
        ServiceBusClient.from_connection_string(broker.connection_string) as client,
    ):
        session = session_id or NEXT_AVAILABLE_SESSION
        yield (
            broker,
            client.get_subscription_receiver("topic", "subscription", session_id=session, max_wait_time=30),
        )
