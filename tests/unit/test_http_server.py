"""The twin server runner serves an app on a free loopback port and stops cleanly."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.http_server import serve_in_thread


async def _hello(_: Request) -> Response:
    return PlainTextResponse("hello")


def test_serves_on_a_free_port_and_stops() -> None:
    """A started server answers over loopback; after stop() the port refuses connections."""
    app = Starlette(routes=[Route("/", _hello)])
    with serve_in_thread(app) as handle:
        assert handle.port > 0
        assert httpx.get(handle.url + "/").text == "hello"
    with pytest.raises(httpx.ConnectError):
        httpx.get(handle.url + "/", timeout=1)


def test_a_taken_port_is_a_sandbox_error_naming_the_address() -> None:
    """Binding fails as the twins' starters expect (they close what they opened on SandboxError)."""
    app = Starlette(routes=[Route("/", _hello)])
    with serve_in_thread(app) as taken, pytest.raises(SandboxError, match=rf"127\.0\.0\.1:{taken.port}"):
        serve_in_thread(app, port=taken.port)
