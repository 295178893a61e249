"""Reconcile's page readers, against httpx.MockTransport: paging, throttling, lookups and failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dualbus.ops._reconcile_read import ReconcileError, dataverse_columns, read_dataverse, read_fo
from dualbus.producers.dv_lookups import LookupResolver
from dualbus.shared.api import ApiClient
from dualbus.shared.maps import load_maps

MAPS = load_maps()
Handler = Callable[[httpx.Request], httpx.Response]


class _Token:
    async def token(self, *, refresh: bool = False) -> str:
        return "refreshed" if refresh else "token"


def _api(handler: Handler, base: str = "https://fo.example") -> tuple[ApiClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ApiClient(base, _Token(), http), http


async def _all(pages: Any) -> list[list[dict[str, Any]]]:
    return [page async for page in pages]


@pytest.mark.asyncio
async def test_fo_pages_follow_next_links_across_companies() -> None:
    """F&O is read across companies and page by page until no next link is left."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "skip" in request.url.params:
            return httpx.Response(200, json={"value": [{"n": 3}]})
        link = "https://fo.example/data/CustomersV3?cross-company=true&skip=2"
        return httpx.Response(200, json={"value": [{"n": 1}, {"n": 2}], "@odata.nextLink": link})

    api, http = _api(handler)
    async with http:
        pages = await _all(read_fo(api, "CustomersV3"))
    assert [[row["n"] for row in page] for page in pages] == [[1, 2], [3]]
    assert seen[0].url.params["cross-company"] == "true"
    assert seen[0].url.path == "/data/CustomersV3"


@pytest.mark.asyncio
async def test_throttled_page_is_retried_after_the_given_wait() -> None:
    """A 429 with Retry-After is waited out and the same page asked again, not skipped."""
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json={"value": []})]
    )
    api, http = _api(lambda _: next(answers))
    async with http:
        assert await _all(read_fo(api, "Currencies")) == [[]]


@pytest.mark.asyncio
async def test_refused_read_raises_reconcile_error() -> None:
    """A 400 answer becomes a ReconcileError naming the entity and the service's message."""
    body = {"error": {"code": "0x80060888", "message": "Resource not found"}}
    api, http = _api(lambda _: httpx.Response(400, json=body))
    async with http:
        with pytest.raises(ReconcileError, match=r"CustomersV3.*Resource not found"):
            await _all(read_fo(api, "CustomersV3"))


@pytest.mark.asyncio
async def test_dataverse_rows_select_columns_and_resolve_lookups() -> None:
    """Dataverse is asked for the mapped columns in pages, and lookup ids come back as natural keys."""
    customers = MAPS["customers"]
    company_id = "11111111-1111-1111-1111-111111111111"
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path.endswith(f"cdm_companies({company_id})"):
            return httpx.Response(200, json={"cdm_companycode": "USMF"})
        row = {
            "accountnumber": "US-1",
            "_msdyn_company_value": company_id,
            "_transactioncurrencyid_value": None,
        }
        return httpx.Response(200, json={"value": [row]})

    api, http = _api(handler, "https://org.example/api/data/v9.2")
    async with http:
        resolver = LookupResolver(api, list(MAPS))
        [[row]] = await _all(read_dataverse(api, customers, resolver, page_size=100))
    assert row["msdyn_company"] == {"cdm_companycode": "USMF"}
    assert row["transactioncurrencyid"] is None
    first = requests[0]
    assert first.headers["Prefer"] == "odata.maxpagesize=100"
    selected = first.url.params["$select"].split(",")
    assert {"name", "_msdyn_company_value", "customertypecode", "accountid", "dualbus_sourceversion"} <= set(
        selected
    )


def test_columns_name_lookups_by_their_id_column() -> None:
    """A lookup is selected as its _x_value column, never by its navigation name."""
    columns = dataverse_columns(MAPS["customers"])
    assert "_msdyn_customergroupid_value" in columns
    assert "msdyn_customergroupid" not in columns
    assert len(columns) == len(set(columns))
