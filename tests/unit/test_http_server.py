"""The twin server runner serves an app on a free loopback port and stops cleanly."""

from __future__ import annotations

import asyncio
import gc
import ssl
import threading
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from dualbus.sandbox.errors import SandboxError
from dualbus.sandbox.http_server import serve_in_thread
from dualbus.sandbox.tls import loopback_certificate


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


def test_a_tls_server_stops_soon_though_a_client_keeps_its_connection_open() -> None:
    """uvicorn waits for a TLS client's close_notify, which a client not reading never sends: the stop
    gives up waiting after its grace instead of after the 10 s join timeout."""
    tls = loopback_certificate()
    app = Starlette(routes=[Route("/", _hello)])
    try:
        handle = serve_in_thread(app, tls=tls)
        with httpx.Client(verify=ssl.create_default_context(cafile=tls.ca_bundle)) as client:
            assert client.get(handle.url + "/").text == "hello"  # the connection stays in the pool
            started = time.monotonic()
            handle.stop()
            took = time.monotonic() - started
        assert took < 5, took
        assert not handle._thread.is_alive()
        gc.collect()  # a transport left unclosed would warn here (warnings are errors)
    finally:
        tls.remove()


def test_a_request_under_way_is_answered_before_the_server_stops() -> None:
    async def slow(_: Request) -> Response:
        await asyncio.sleep(0.3)
        return PlainTextResponse("late")

    app = Starlette(routes=[Route("/", slow)])
    handle = serve_in_thread(app)
    answers: list[str] = []
    asking = threading.Thread(target=lambda: answers.append(httpx.get(handle.url + "/", timeout=5).text))
    asking.start()
    time.sleep(0.1)
    handle.stop()
    asking.join(5)
    assert answers == ["late"]
