"""A listening TCP socket for an ASGI server (uvicorn), on which answers are not held back by Nagle.

asyncio turns Nagle's algorithm off on accepted connections only when the listening socket says TCP
(``IPPROTO_TCP``); uvicorn's own socket does not, and an answer's body written after its headers then waits
for the caller's delayed ACK (about 40 ms a response on Linux).
"""

from __future__ import annotations

import socket

__all__ = ["tcp_listener"]

_BACKLOG = 2048


def tcp_listener(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (0: a free port); OSError when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock
