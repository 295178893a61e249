"""Fixtures: a running F&O twin with small pages, clients for two applications, and a test webhook."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.fo import FoHandle, start_fo
from sandbox.http_server import ServerHandle, serve_in_thread

PAGE_SIZE = 3


@pytest.fixture
def fo() -> Iterator[FoHandle]:
    handle = start_fo(page_size=PAGE_SIZE, companies={"workload": "DEMF"}, event_backoff_seconds=0.01)
    with handle:
        yield handle


@pytest.fixture
def client(fo: FoHandle) -> Iterator[httpx.Client]:
    with fo.client("dualbus") as c:
        yield c


@dataclass
class Webhook:
    """A loopback receiver that answers 500 to its first ``fail_first`` calls and records the rest."""

    fail_first: int = 0
    calls: int = 0
    received: list[dict[str, object]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    server: ServerHandle | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/hook"

    async def endpoint(self, request: Request) -> Response:
        self.calls += 1
        if self.calls <= self.fail_first:
            return Response(status_code=500)
        self.received.append(orjson.loads(await request.body()))
        self.arrived.set()
        return Response(status_code=200)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.server = serve_in_thread(Starlette(routes=[Route("/hook", hook.endpoint, methods=["POST"])]))
    with hook.server:
        yield hook


def customer(account: str, company: str = "usmf", **extra: object) -> dict[str, object]:
    """A minimal valid CustomersV3 body."""
    return {
        "dataAreaId": company,
        "CustomerAccount": account,
        "OrganizationName": f"Org {account}",
        "PartyType": "Organization",
        "SalesCurrencyCode": "USD",
        **extra,
    }


KEY_PATH = "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"
