"""Rows whose alternate key the Web API cannot address are found by a query and addressed by their id."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from dualbus.consumers import _dataverse_refs as refs_module
from dualbus.consumers._dataverse_refs import References, addressable, made_id
from dualbus.d365 import dataverse_tables
from dualbus.shared.errors import LookupMissingError, TransientError
from dualbus.shared.http import Response
from dualbus.shared.maps import LookupBinding, dataverse_key_literal, load_maps

MAPS = load_maps()
ROOT = "api/data/v9.2"
DATED = {"msdyn_validfrom": "2024-01-01T00:00:00Z", "msdyn_name": "A:B"}
FOUND = "6f1d8a3e-2b7c-4e59-9d0a-1c2b3d4e5f60"


class _Queries:
    """Answers each query with the rows scripted for its table; records what was asked."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        self.rows = rows
        self.asked: list[tuple[str, str, dict[str, str] | None]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        assert json is None  # a query only
        assert headers is None
        self.asked.append((method, path, params))
        table = path.removeprefix(f"{ROOT}/")
        return httpx.Response(
            200, json={"value": self.rows.get(table, [])}, request=httpx.Request(method, "https://x")
        )


@pytest.mark.parametrize("char", list("/<>*%&:\\?+"))
def test_a_text_key_value_holding_a_character_the_web_api_refuses_is_not_addressable(char: str) -> None:
    assert not addressable([("isocurrencycode", f"'X{char}Y'")])
    assert addressable([("isocurrencycode", "'X-Y'")])


def test_a_date_and_time_key_value_is_addressable_though_written_with_colons() -> None:
    """A date and time is no text: written bare (msdyn_validfrom=2024-01-01T00:00:00Z) it addresses a row."""
    table = "msdyn_internalorganizationhierarchies"
    terms = [(name, dataverse_key_literal(table, name, value)) for name, value in DATED.items()]
    assert addressable(terms[:1])
    assert not addressable(terms)


def test_the_id_made_for_a_row_is_the_same_for_the_same_table_and_key_only() -> None:
    made = made_id("transactioncurrencies", {"isocurrencycode": "X/Y"})
    assert made == made_id("transactioncurrencies", {"isocurrencycode": "X/Y"})
    assert made != made_id("transactioncurrencies", {"isocurrencycode": "X/Z"})
    assert made != made_id("accounts", {"isocurrencycode": "X/Y"})


@pytest.mark.asyncio
async def test_such_a_row_is_addressed_by_the_id_a_query_on_its_key_finds() -> None:
    api = _Queries({"transactioncurrencies": [{"transactioncurrencyid": FOUND}]})
    path = await References(api, root=ROOT).row_path(MAPS["currency"], {"isocurrencycode": "O'X/Y"})
    assert path == f"{ROOT}/transactioncurrencies({FOUND})"
    [(method, asked, params)] = api.asked
    assert (method, asked) == ("GET", f"{ROOT}/transactioncurrencies")
    assert params == {"$select": "transactioncurrencyid", "$filter": "isocurrencycode eq 'O''X/Y'"}


@pytest.mark.asyncio
async def test_such_a_row_not_there_yet_is_addressed_by_the_id_made_for_it() -> None:
    key = {"isocurrencycode": "X/Y"}
    path = await References(_Queries({}), root=ROOT).row_path(MAPS["currency"], key)
    assert path == f"{ROOT}/transactioncurrencies({made_id('transactioncurrencies', key)})"


@pytest.mark.asyncio
async def test_a_lookup_to_such_a_row_binds_the_id_a_query_finds() -> None:
    api = _Queries({"transactioncurrencies": [{"transactioncurrencyid": FOUND}]})
    binding = LookupBinding("transactioncurrencyid", "transactioncurrencies", {"isocurrencycode": "X/Y"})
    bound = await References(api, root=ROOT).bind(MAPS["customers"], binding, None)
    assert bound == {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({FOUND})"}
    [(_, asked, params)] = api.asked
    assert asked == f"{ROOT}/transactioncurrencies"
    assert params == {"$select": "transactioncurrencyid", "$filter": "isocurrencycode eq 'X/Y'"}


@pytest.mark.asyncio
async def test_a_lookup_part_of_a_key_is_no_reason_to_address_a_row_by_id() -> None:
    """A key's lookup part is written as the referenced row's id: its natural value may hold anything."""
    api = _Queries({"cdm_companies": [{"cdm_companyid": FOUND}]})
    references = References(api, root=ROOT)
    path = await references.row_path(
        MAPS["customer_groups"], {"msdyn_company": "US/MF", "msdyn_groupid": "10"}
    )
    assert path == f"{ROOT}/msdyn_customergroups(_msdyn_company_value={FOUND},msdyn_groupid='10')"
    assert [asked for _, asked, _ in api.asked] == [f"{ROOT}/cdm_companies"]  # the company, by a query


COMPANY_ID, NEW_COMPANY_ID = "8f3c7a52-0d4b-4c1e-9a6f-2b1d5e7c9a10", "1a2b3c4d-0d4b-4c1e-9a6f-2b1d5e7c9a10"
ACCOUNT_KEY = {"msdyn_company": "USMF", "accountnumber": "C-1"}


class _Companies:
    """Answers a company's read by key with the id it holds now, each read held until ``go`` is set."""

    def __init__(self) -> None:
        self.company_id = COMPANY_ID
        self.reads = 0
        self.go = asyncio.Event()

    async def request(self, method: str, path: str, **_: Any) -> Response:
        assert (method, path) == ("GET", f"{ROOT}/cdm_companies(cdm_companycode='USMF')")
        self.reads += 1
        await self.go.wait()
        return httpx.Response(
            200, json={"cdm_companyid": self.company_id}, request=httpx.Request(method, "https://x")
        )


def _customers_map():
    return next(m for m in MAPS if m.name == "customers")


@pytest.mark.asyncio
async def test_records_wanting_an_id_at_the_same_moment_share_one_read() -> None:
    companies = _Companies()
    refs = References(companies, root=ROOT)
    paths = [asyncio.create_task(refs.row_path(_customers_map(), ACCOUNT_KEY)) for _ in range(5)]
    await asyncio.sleep(0.01)
    companies.go.set()
    await asyncio.wait_for(asyncio.gather(*paths), 5)
    assert {await path for path in paths} == {
        f"{ROOT}/accounts(_msdyn_company_value={COMPANY_ID},accountnumber='C-1')"
    }
    assert companies.reads == 1


@pytest.mark.asyncio
async def test_an_id_read_again_stays_in_use_until_the_new_one_is_read() -> None:
    """While a delete of a missing row reads its company's id again, the other records go on with the id
    held (before, it was dropped first, and every record meanwhile read it again on its own); once the new
    id is read, they take it."""
    companies = _Companies()
    companies.go.set()
    refs = References(companies, root=ROOT)
    table_map = _customers_map()
    await refs.row_path(table_map, ACCOUNT_KEY)
    companies.go.clear()
    companies.company_id = NEW_COMPANY_ID  # the company made again meanwhile
    renewal = asyncio.create_task(refs.refreshed(table_map, ACCOUNT_KEY, ()))
    await asyncio.sleep(0.01)
    assert companies.reads == 2  # the renewal's read, under way
    during = await asyncio.wait_for(refs.row_path(table_map, ACCOUNT_KEY), 5)
    assert COMPANY_ID in during
    assert companies.reads == 2  # no read of its own
    companies.go.set()
    assert await renewal is True
    assert NEW_COMPANY_ID in await refs.row_path(table_map, ACCOUNT_KEY)
    assert companies.reads == 2


class _AnyRow:
    """Answers a read of any row by key with an id made from its path; counts the reads of each path."""

    def __init__(self) -> None:
        self.reads: dict[str, int] = {}

    async def request(self, method: str, path: str, **_: Any) -> Response:
        self.reads[path] = self.reads.get(path, 0) + 1
        guid = str(uuid.uuid5(uuid.NAMESPACE_URL, path))
        primary = dataverse_tables()[path.removeprefix(f"{ROOT}/").split("(")[0]].primary_id
        return httpx.Response(200, json={primary: guid}, request=httpx.Request(method, "https://x"))


def _currency(code: str) -> LookupBinding:
    return LookupBinding("transactioncurrencyid", "transactioncurrencies", {"isocurrencycode": code})


@pytest.mark.asyncio
async def test_past_its_bound_the_id_cache_lets_the_least_recently_used_go(monkeypatch) -> None:
    monkeypatch.setattr(refs_module, "_CACHE_LIMIT", 2)
    rows = _AnyRow()
    refs = References(rows, root=ROOT)
    table_map = _customers_map()
    for code in ("USD", "EUR", "USD", "GBP", "USD", "EUR"):  # GBP pushes out EUR, not USD (used since)
        await refs.bind(table_map, _currency(code), None)
    assert rows.reads == {
        f"{ROOT}/transactioncurrencies(isocurrencycode='USD')": 1,
        f"{ROOT}/transactioncurrencies(isocurrencycode='EUR')": 2,
        f"{ROOT}/transactioncurrencies(isocurrencycode='GBP')": 1,
    }


@pytest.mark.asyncio
async def test_a_change_giving_up_does_not_cancel_the_read_another_waits_for() -> None:
    companies = _Companies()
    refs = References(companies, root=ROOT)
    first = asyncio.create_task(refs.row_path(_customers_map(), ACCOUNT_KEY))
    second = asyncio.create_task(refs.row_path(_customers_map(), ACCOUNT_KEY))
    await asyncio.sleep(0.01)
    first.cancel()  # its session lost
    companies.go.set()
    assert COMPANY_ID in await asyncio.wait_for(second, 5)
    assert first.cancelled()
    assert companies.reads == 1


@pytest.mark.asyncio
async def test_once_closed_no_read_starts_and_those_under_way_stop() -> None:
    companies = _Companies()
    refs = References(companies, root=ROOT)
    waiting = asyncio.create_task(refs.row_path(_customers_map(), ACCOUNT_KEY))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(refs.aclose(), 5)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    with pytest.raises(TransientError, match="closed"):
        await refs.row_path(_customers_map(), ACCOUNT_KEY)


class _CompanyLater(_Companies):
    """A company that is missing at its first two reads and there at the next."""

    async def request(self, method: str, path: str, **kwargs: Any) -> Response:
        if self.reads < 2:
            self.reads += 1
            return httpx.Response(404, json={"error": {}}, request=httpx.Request(method, "https://x"))
        return await super().request(method, path, **kwargs)


@pytest.mark.asyncio
async def test_a_row_found_missing_beside_a_read_is_not_read_again_by_its_bind_but_is_by_a_key() -> None:
    """The bind of the change that just found its lookup missing raises without a second read; a key that
    holds the same row (a delete's path) reads it again, since a delete takes a missing one for no row."""
    companies = _CompanyLater()
    companies.go.set()
    refs = References(companies, root=ROOT)
    company = LookupBinding("msdyn_company", "cdm_companies", {"cdm_companycode": "USMF"})
    await asyncio.gather(*refs.resolving(_customers_map(), (company,)))
    assert companies.reads == 1
    with pytest.raises(LookupMissingError):
        await refs.bind(_customers_map(), company, None)
    assert companies.reads == 1
    await asyncio.gather(*refs.resolving(_customers_map(), (company,)))  # missing: remembered once more
    assert companies.reads == 2
    assert COMPANY_ID in await refs.row_path(_customers_map(), ACCOUNT_KEY)  # read, not taken as missing
    assert companies.reads == 3


class _NoCompanies:
    """Every company is missing; counts the reads of each."""

    def __init__(self) -> None:
        self.reads: dict[str, int] = {}

    async def request(self, method: str, path: str, **_: Any) -> Response:
        self.reads[path] = self.reads.get(path, 0) + 1
        return httpx.Response(404, json={"error": {}}, request=httpx.Request(method, "https://x"))


@pytest.mark.asyncio
async def test_past_the_misses_kept_the_oldest_is_let_go_not_the_one_just_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many lookups found missing at once: the newest misses stay for their binds (each would otherwise
    read its row a second time), the oldest go first."""
    monkeypatch.setattr(refs_module, "_MISSES_KEPT", 2)
    companies = _NoCompanies()
    refs = References(companies, root=ROOT)
    bindings = [LookupBinding("msdyn_company", "cdm_companies", {"cdm_companycode": code}) for code in "ABCD"]
    for binding in bindings:
        await asyncio.gather(*refs.resolving(_customers_map(), (binding,)))
    assert sum(companies.reads.values()) == 4
    for binding in bindings[2:]:  # the two newest: raised from memory
        with pytest.raises(LookupMissingError):
            await refs.bind(_customers_map(), binding, None)
    assert sum(companies.reads.values()) == 4
    with pytest.raises(LookupMissingError):  # the oldest was let go: read again
        await refs.bind(_customers_map(), bindings[0], None)
    assert sum(companies.reads.values()) == 5
