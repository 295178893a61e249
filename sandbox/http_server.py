"""Runs an ASGI app (a twin) on a loopback port in a background thread, for tests, benchmarks and the demo."""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.types import ASGIApp

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.handles import StopOnExit
from dualbus.sandbox.tls import TlsFiles
from dualbus.shared.listening import tcp_listener

__all__ = ["ServerHandle", "serve_in_thread"]

_START_TIMEOUT_SECONDS = 10.0
_STOP_GRACE_SECONDS = 1.0


class ServerHandle(StopOnExit):
    """A running uvicorn server; ``url`` is where it listens, ``stop()`` ends it."""

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int, *, tls: bool = False
    ) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.tls = tls

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (``https://`` when serving TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def stop(self) -> None:
        """Ask the server to finish its requests and exit, then wait for its thread.

        Requests under way get ``_STOP_GRACE_SECONDS`` to finish; then the connections still open are
        dropped. Over TLS, a connection a client keeps open is closed with a TLS close_notify, and
        uvicorn waits for the client's answer, which a client that is not reading never sends: each stop of
        the identity endpoint then took the whole join timeout (10 s).
        """
        self._server.should_exit = True
        self._thread.join(timeout=_STOP_GRACE_SECONDS)
        if self._thread.is_alive():
            # Drop the connections still open (without TLS's closing exchange), on the server's own loop:
            # each then ends as a connection the client lost, and uvicorn exits with nothing left open.
            for connection in list(self._server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    connection.loop.call_soon_threadsafe(transport.abort)
            self._thread.join(timeout=_START_TIMEOUT_SECONDS)


def serve_in_thread(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, tls: TlsFiles | None = None
) -> ServerHandle:
    """Start ``app`` on ``host:port`` (0 picks a free port) and return once it accepts connections.

    With ``tls`` the server speaks HTTPS with that certificate (clients trust ``tls.ca_bundle``).
    """
    try:
        sock = tcp_listener(host, port)
    except OSError as exc:
        raise SandboxError(f"cannot listen on {host}:{port}: {exc}") from exc
    # Access logs off: a twin serving thousands of requests a second must not spend its time printing.
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ssl_certfile=str(tls.certificate) if tls else None,
        ssl_keyfile=str(tls.key) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="twin-server")
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise SandboxError(f"the server on {host}:{port} did not start")
        time.sleep(0.01)
    return ServerHandle(server, thread, host, sock.getsockname()[1], tls=tls is not None)
