"""A loopback server that takes AMQP connections and never answers: an open hangs mid-handshake."""

from __future__ import annotations

import asyncio


class SilentBroker:
    """Accepts connections and reads whatever comes, answering nothing; notes when a client hangs up."""

    def __init__(self) -> None:
        self.header_read = asyncio.Event()
        self.hung_up = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        if await reader.read(8):  # the protocol header the SDK sends first
            self.header_read.set()
        await reader.read()  # until the client's end of the stream
        self.hung_up.set()


def connection_string(port: int) -> str:
    """The emulator's connection string form: plain AMQP on ``port``, a SAS key the broker never reads."""
    return (
        f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=k;SharedAccessKey=k;UseDevelopmentEmulator=true"
    )
