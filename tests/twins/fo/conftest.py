"""Fixtures: a running F&O twin with small pages, a client whose reference rows exist, and a test webhook.

Every field used here is in ``d365/fo``: CustomersV3 rows name a customer group, a currency and payment
terms, which F&O checks exist, so ``client`` creates them first (``seed_references``).
"""

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

from dualbus.sandbox.fo import FoHandle, start_fo
from dualbus.sandbox.http_server import ServerHandle, serve_in_thread

PAGE_SIZE = 3
COMPANIES = ("usmf", "demf")
GROUP, CURRENCY, TERMS = "10", "USD", "Net30"


@pytest.fixture
def fo() -> Iterator[FoHandle]:
    handle = start_fo(page_size=PAGE_SIZE, companies={"workload": "DEMF"}, event_backoff_seconds=0.001)
    with handle:
        yield handle


@pytest.fixture
def client(fo: FoHandle) -> Iterator[httpx.Client]:
    with fo.client("dualbus") as c:
        seed_references(c)
        yield c


def seed_references(client: httpx.Client, companies: tuple[str, ...] = COMPANIES) -> None:
    """Create the currency, and in each company the payment terms and customer group, customers refer to."""
    bodies = [("Currencies", {"CurrencyCode": CURRENCY, "Name": "US dollar", "Symbol": "$"})]
    for company in companies:
        bodies.append(("PaymentTerms", {"dataAreaId": company, "Name": TERMS, "NumberOfDays": 30}))
        group = {
            "dataAreaId": company,
            "CustomerGroupId": GROUP,
            "Description": "Wholesale",
            "PaymentTermId": TERMS,
        }
        bodies.append(("CustomerGroups", group))
    for entity, body in bodies:
        response = client.post(f"/data/{entity}", json=body)
        assert response.status_code == 201, response.text


def customer(account: str, company: str = "usmf", **extra: object) -> dict[str, object]:
    """A valid CustomersV3 body whose group, currency and payment terms ``seed_references`` creates."""
    return {
        "dataAreaId": company,
        "CustomerAccount": account,
        "OrganizationName": f"Org {account}",
        "PartyType": "Organization",
        "CustomerGroupId": GROUP,
        "SalesCurrencyCode": CURRENCY,
        "PaymentTerms": TERMS,
        **extra,
    }


KEY_PATH = "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"


@dataclass
class Received:
    """One request the webhook accepted."""

    body: dict[str, object]
    headers: dict[str, str]
    query: dict[str, str]


@dataclass
class Webhook:
    """A loopback receiver that answers 500 to its first ``fail_first`` calls and records the rest."""

    fail_first: int = 0
    calls: int = 0
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    server: ServerHandle | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url + "/hook"

    @property
    def received(self) -> list[dict[str, object]]:
        return [r.body for r in self.requests]

    async def endpoint(self, request: Request) -> Response:
        self.calls += 1
        if self.calls <= self.fail_first:
            return Response(status_code=500)
        body = orjson.loads(await request.body())
        self.requests.append(Received(body, dict(request.headers), dict(request.query_params)))
        self.arrived.set()
        return Response(status_code=200)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.server = serve_in_thread(Starlette(routes=[Route("/hook", hook.endpoint, methods=["POST"])]))
    with hook.server:
        yield hook
