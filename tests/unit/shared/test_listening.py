"""The listening socket for ASGI servers: connections asyncio accepts on it have Nagle's algorithm off."""

from __future__ import annotations

import asyncio
import socket

import pytest

from dualbus.shared.listening import tcp_listener


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY as asyncio leaves it on a connection accepted on ``listener``."""
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class _Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(_Probe, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, 5)
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_accepted_connections_answer_without_waiting_for_a_delayed_ack() -> None:
    assert await _nodelay_of_accepted(tcp_listener("127.0.0.1", 0)) != 0


@pytest.mark.asyncio
async def test_a_socket_that_does_not_say_tcp_leaves_nagle_on() -> None:
    """Why the listener says IPPROTO_TCP: without it (uvicorn's own socket) asyncio leaves Nagle on."""
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    plain.bind(("127.0.0.1", 0))
    plain.listen()
    assert await _nodelay_of_accepted(plain) == 0


def test_a_taken_port_is_an_os_error() -> None:
    with tcp_listener("127.0.0.1", 0) as taken, pytest.raises(OSError, match="in use"):
        tcp_listener("127.0.0.1", taken.getsockname()[1])
