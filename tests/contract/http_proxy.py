"""A small HTTP CONNECT proxy for the SDK's proxy samples: Basic authentication, then a byte tunnel.

The samples give the SDK ``http_proxy={"proxy_hostname": "127.0.0.1", "proxy_port": 8899, "username":
"admin", "password": "123456"}``; the SDK then asks the proxy for a tunnel (``CONNECT <host>:443``, RFC 9110
9.3.6) with ``Proxy-Authorization: Basic ...`` and opens its WebSocket through it. This proxy checks the
credentials, records what was asked, and tunnels every CONNECT to one upstream address, the emulator's,
whatever host and port were asked (the emulator takes WebSockets on any of its ports, 443 is not needed).
The HTTP side is the standard library's ``http.server``.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_CHUNK = 64 * 1024


@dataclass
class ProxyLog:
    """What the proxy was asked: each CONNECT target, and whether its credentials were right."""

    targets: list[str] = field(default_factory=list)
    refused: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], upstream: tuple[str, int], authorization: str) -> None:
        super().__init__(address, _Tunnel)
        self.upstream = upstream
        self.authorization = authorization
        self.log = ProxyLog()


class _Tunnel(BaseHTTPRequestHandler):
    server: _Server  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def do_CONNECT(self) -> None:
        """Check the Basic credentials, then carry bytes both ways until either side closes."""
        if self.headers.get("Proxy-Authorization", "") != self.server.authorization:
            self.server.log.refused += 1
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.log.targets.append(self.path)
        upstream = socket.create_connection(self.server.upstream, timeout=10)
        upstream.settimeout(None)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        client = self.connection
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join(timeout=10)
        upstream.close()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Keep request lines out of the test output."""


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(_CHUNK):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


class ConnectProxy:
    """A CONNECT proxy bound to ``address`` (``OSError`` if it cannot be) that takes ``username`` and
    ``password`` and tunnels to ``upstream``; serves while used as a context manager."""

    def __init__(
        self, address: tuple[str, int], upstream: tuple[str, int], *, username: str, password: str
    ) -> None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._server = _Server(address, upstream, f"Basic {token}")
        self._thread = threading.Thread(target=self._server.serve_forever, name="connect-proxy", daemon=True)
        self.log = self._server.log
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
