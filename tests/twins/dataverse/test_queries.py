"""Collection queries: the $filter/$select/$top/$orderby subset and paging through @odata.nextLink.

See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
"""

from __future__ import annotations

import itertools
import string

import httpx
import pytest

from tests.twins.dataverse.support import part_statuses, post_batch

_API = "/api/data/v9.2/"


@pytest.fixture
def accounts(client: httpx.Client, company: str) -> str:
    """Five accounts in company USMF with names A..E and credit limits 100..500; returns the company id."""
    for index, letter in enumerate("ABCDE"):
        response = client.patch(
            f"accounts(_msdyn_company_value={company},accountnumber='N-{index}')",
            json={"name": f"{letter} Ltd", "creditlimit": (index + 1) * 100},
        )
        assert response.status_code == 204
    return company


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()["value"]]


@pytest.mark.usefixtures("accounts")
def test_filter_compares_numbers_and_combines_with_and_or(client: httpx.Client) -> None:
    """gt/le combined with and/or, and parentheses, select the matching rows only."""
    response = client.get(
        "accounts",
        params={
            "$filter": "(creditlimit gt 100 and creditlimit le 300) or name eq 'e ltd'",
            "$orderby": "name",
        },
    )
    assert _names(response) == ["B Ltd", "C Ltd", "E Ltd"]


def test_filter_on_lookup_value_column_and_null(client: httpx.Client, accounts: str) -> None:
    """A lookup's _x_value column filters by GUID, and eq null matches rows without a value."""
    by_company = client.get("accounts", params={"$filter": f"_msdyn_company_value eq {accounts}"})
    without_phone = client.get("accounts", params={"$filter": "telephone1 eq null and creditlimit ne 500"})
    assert len(_names(by_company)) == 5
    assert len(_names(without_phone)) == 4


@pytest.mark.usefixtures("accounts")
def test_select_orderby_and_top(client: httpx.Client) -> None:
    """$select limits the columns (plus id and ETag), $orderby desc sorts, $top cuts the result."""
    response = client.get("accounts", params={"$select": "name", "$orderby": "creditlimit desc", "$top": "2"})
    rows = response.json()["value"]
    assert [r["name"] for r in rows] == ["E Ltd", "D Ltd"]
    assert set(rows[0]) == {"@odata.etag", "name", "accountid"}
    assert response.json()["@odata.context"].endswith("$metadata#accounts(name)")


@pytest.mark.usefixtures("accounts")
def test_paging_follows_next_links(client: httpx.Client) -> None:
    """With Prefer: odata.maxpagesize=2 the rows come in pages of two chained by @odata.nextLink."""
    seen: list[str] = []
    url: str | None = "accounts?$select=name&$orderby=name"
    pages = 0
    while url is not None:
        response = client.get(url, headers={"Prefer": "odata.maxpagesize=2"})
        body = response.json()
        assert len(body["value"]) <= 2
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=2"
        seen += [row["name"] for row in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 3
    assert seen == ["A Ltd", "B Ltd", "C Ltd", "D Ltd", "E Ltd"]


@pytest.mark.usefixtures("accounts")
def test_string_functions_filter(client: httpx.Client) -> None:
    """startswith/contains filter strings without regard to case."""
    assert _names(client.get("accounts", params={"$filter": "startswith(name,'c')"})) == ["C Ltd"]
    assert len(_names(client.get("accounts", params={"$filter": "contains(name,'LTD')"}))) == 5


@pytest.mark.usefixtures("accounts")
def test_malformed_filter_is_400(client: httpx.Client) -> None:
    """A $filter the twin cannot parse answers 400 in the Web API error shape."""
    response = client.get("accounts", params={"$filter": "name eq"})
    assert response.status_code == 400
    assert response.json()["error"]["code"].startswith("0x")


def test_count_is_exact_after_deletes_and_pages_cover_every_row(client: httpx.Client, accounts: str) -> None:
    """$count counts the rows there are (after a delete too, and within $top); the pages hold each once.

    $count: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
    """
    gone = client.delete(f"accounts(_msdyn_company_value={accounts},accountnumber='N-2')")
    assert gone.status_code == 204
    one_a_page = {"Prefer": "odata.maxpagesize=1"}
    first = client.get("accounts", params={"$count": "true"}, headers=one_a_page).json()
    assert first["@odata.count"] == 4
    assert client.get("accounts", params={"$count": "true", "$top": "3"}).json()["@odata.count"] == 3
    seen, link = [row["name"] for row in first["value"]], first.get("@odata.nextLink")
    while link:
        page = client.get(link, headers=one_a_page).json()
        seen += [row["name"] for row in page["value"]]
        link = page.get("@odata.nextLink")
    assert sorted(seen) == ["A Ltd", "B Ltd", "D Ltd", "E Ltd"]


def _currencies(client: httpx.Client, count: int) -> None:
    """``count`` currencies, created in batches of the most requests a batch may hold."""
    codes = ["".join(letters) for letters in itertools.product(string.ascii_uppercase, repeat=3)][:count]
    for start in range(0, count, 1000):
        upserts = [
            ("PATCH", f"{_API}transactioncurrencies(isocurrencycode='{code}')", {"currencyname": code})
            for code in codes[start : start + 1000]
        ]
        assert set(part_statuses(post_batch(client, upserts))) == {204}


def test_count_stops_at_5000_and_the_annotations_say_it_was_exceeded(client: httpx.Client) -> None:
    """$count counts up to 5,000 rows; the total-count annotations, when preferred, say the limit was passed.

    https://github.com/MicrosoftDocs/powerapps-docs/blob/09d2ca01442806eab093e2143c2a5148c1c7738f/powerapps-docs/
    developer/data-platform/webapi/query/count-rows.md
    """
    _currencies(client, 5001)
    wanted = "Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
    annotations = f'odata.include-annotations="{wanted}"'
    counted = client.get(
        "transactioncurrencies",
        params={"$count": "true", "$select": "isocurrencycode"},
        headers=[("Prefer", "odata.maxpagesize=2"), ("Prefer", annotations)],
    ).json()
    assert counted["@odata.count"] == 5000
    assert counted["@Microsoft.Dynamics.CRM.totalrecordcount"] == 5000
    assert counted["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    # The two Prefer lines both apply: the page size of the first is kept.
    assert len(counted["value"]) == 2
    bare = client.get("transactioncurrencies", params={"$count": "true", "$top": "1"}).json()
    assert bare["@odata.count"] == 1
    assert "@Microsoft.Dynamics.CRM.totalrecordcount" not in bare


def test_total_count_annotations_follow_the_preferred_patterns(client: httpx.Client) -> None:
    """Under the limit the count is exact and not exceeded; without $count the total reads -1; a more
    specific pattern decides over a broader one, so ``*`` minus the namespace includes neither annotation."""
    _currencies(client, 3)

    def annotations(prefer: str, params: dict[str, str]) -> dict[str, object]:
        body = client.get("transactioncurrencies", params=params, headers={"Prefer": prefer}).json()
        return {name: value for name, value in body.items() if name.startswith("@Microsoft")}

    everything = {"$count": "true"}
    assert annotations('odata.include-annotations="Microsoft.Dynamics.CRM.*"', everything) == {
        "@Microsoft.Dynamics.CRM.totalrecordcount": 3,
        "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": False,
    }
    assert annotations('odata.include-annotations="*"', {})["@Microsoft.Dynamics.CRM.totalrecordcount"] == -1
    assert annotations('odata.include-annotations="*,-Microsoft.Dynamics.CRM.*"', everything) == {}
    assert annotations(
        'odata.include-annotations="-*,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"', everything
    ) == {"@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": False}
    # Between patterns as specific, the exclusion wins, whichever comes first.
    assert (
        annotations(
            'odata.include-annotations="Microsoft.Dynamics.CRM.*,-Microsoft.Dynamics.CRM.*"', everything
        )
        == {}
    )
    assert annotations('odata.include-annotations="-*,*"', everything) == {}
