"""$batch: ordered requests, atomic change sets, continue-on-error and Content-ID references.

See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
"""

from __future__ import annotations

import httpx

from tests.twins.dataverse.support import part_statuses, post_batch

_API = "/api/data/v9.2/"
_NO_COMPANY = "00000000-0000-0000-0000-000000000000"


def _currency(code: str, name: str = "") -> tuple[str, str, dict[str, str]]:
    return ("PATCH", f"{_API}transactioncurrencies(isocurrencycode='{code}')", {"currencyname": name or code})


def _codes(client: httpx.Client) -> list[str]:
    rows = client.get("transactioncurrencies", params={"$orderby": "isocurrencycode"}).json()["value"]
    return [row["isocurrencycode"] for row in rows]


def test_batch_runs_requests_in_order_with_a_status_each(client: httpx.Client) -> None:
    """Independent requests run in order; the multipart response holds one status per request."""
    response = post_batch(
        client,
        [
            _currency("EUR"),
            _currency("USD"),
            ("GET", f"{_API}transactioncurrencies?$select=isocurrencycode", None),
        ],
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert part_statuses(response) == [204, 204, 200]
    assert '"isocurrencycode":"EUR"' in response.text
    assert _codes(client) == ["EUR", "USD"]


def test_failing_change_set_is_rolled_back_entirely(client: httpx.Client) -> None:
    """When one request of a change set fails, the change set's earlier writes are undone too."""
    response = post_batch(
        client,
        [[_currency("GBP"), _currency("JPY"), _currency("CHF", "x" * 101)]],
        prefer="odata.continue-on-error",
    )
    assert part_statuses(response) == [400]
    assert "0x80044331" in response.text
    assert _codes(client) == []


def test_successful_change_set_answers_per_content_id(client: httpx.Client) -> None:
    """A change set that succeeds commits all its writes and answers each part with its Content-ID."""
    response = post_batch(client, [[_currency("GBP"), _currency("JPY")]])
    assert response.status_code == 200
    assert "changesetresponse_" in response.text
    assert "Content-ID: 2" in response.text
    assert part_statuses(response) == [204, 204]
    assert _codes(client) == ["GBP", "JPY"]


def test_continue_on_error_runs_the_rest(client: httpx.Client) -> None:
    """With odata.continue-on-error a failed request does not stop the ones after it; the batch is 200."""
    response = post_batch(
        client,
        [_currency("AAA", "x" * 101), _currency("EUR"), _currency("USD")],
        prefer="odata.continue-on-error",
    )
    assert response.status_code == 200
    assert part_statuses(response) == [400, 204, 204]
    assert _codes(client) == ["EUR", "USD"]


def test_without_continue_on_error_the_batch_stops(client: httpx.Client) -> None:
    """Without continue-on-error the batch stops at the first failure and carries its status."""
    response = post_batch(client, [_currency("EUR"), _currency("AAA", "x" * 101), _currency("USD")])
    assert response.status_code == 400
    assert part_statuses(response) == [204, 400]
    assert _codes(client) == ["EUR"]


def test_content_id_reference_binds_a_row_created_earlier(client: httpx.Client) -> None:
    """Inside a change set, "$1" in a bind stands for the row created by the request with Content-ID 1."""
    response = post_batch(
        client,
        [
            [
                ("POST", f"{_API}cdm_companies", {"cdm_companycode": "FRRT"}),
                (
                    "PATCH",
                    f"{_API}msdyn_customergroups(_msdyn_company_value={_NO_COMPANY},msdyn_groupid='10')",
                    None,
                ),
            ]
        ],
        prefer="odata.continue-on-error",
    )
    # A key lookup that points at no company is refused: the whole change set is undone.
    assert part_statuses(response) == [404]
    response = post_batch(
        client,
        [
            [
                ("POST", f"{_API}cdm_companies", {"cdm_companycode": "FRRT"}),
                (
                    "POST",
                    f"{_API}msdyn_customergroups",
                    {"msdyn_groupid": "10", "msdyn_company@odata.bind": "$1"},
                ),
            ]
        ],
    )
    assert part_statuses(response) == [204, 204]
    company = client.get("cdm_companies(cdm_companycode='FRRT')").json()["cdm_companyid"]
    group = client.get("msdyn_customergroups").json()["value"][0]
    assert group["_msdyn_company_value"] == company


def test_malformed_batch_is_400(client: httpx.Client) -> None:
    """A batch without a multipart boundary answers 400 in the Web API error shape."""
    response = client.post("$batch", content=b"nonsense", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert "boundary" in response.json()["error"]["message"]


def test_who_am_i_with_an_absolute_url_inside_a_batch(client: httpx.Client) -> None:
    """A batch part whose request line carries an absolute URL (any host) is served as the relative form."""
    absolute = post_batch(client, [("GET", "https://org.crm.dynamics.com/api/data/v9.2/WhoAmI", None)])
    relative = post_batch(client, [("GET", "WhoAmI", None)])
    direct = client.get("WhoAmI").json()
    assert part_statuses(absolute) == part_statuses(relative) == [200]
    assert f'"UserId":"{direct["UserId"]}"' in absolute.text
    assert f'"UserId":"{direct["UserId"]}"' in relative.text


def test_upsert_by_alternate_key_with_absolute_urls_inside_a_change_set(
    client: httpx.Client, company: str
) -> None:
    """A change set of absolute-URL requests upserts by the account key and reads back like relative ones."""
    root = str(client.base_url)
    url = f"{root}accounts(_msdyn_company_value={company},accountnumber='B-1')"
    response = post_batch(
        client,
        [
            [("PATCH", url, {"name": "Batched"}), ("PATCH", url, {"name": "Batched twice"})],
            ("GET", f"{url}?$select=name", None),
            ("GET", f"{root}WhoAmI", None),
        ],
    )
    assert part_statuses(response) == [204, 204, 200, 200]
    assert f"OData-EntityId: {url}" in response.text
    assert '"name":"Batched twice"' in response.text
    row = client.get(f"accounts(_msdyn_company_value={company},accountnumber='B-1')").json()
    assert row["name"] == "Batched twice"


def test_an_invalid_key_inside_a_change_set_rolls_it_back(client: httpx.Client, company: str) -> None:
    """A part whose key uses the bare lookup name fails the change set with the documented 400, undoing it."""
    root = str(client.base_url)
    response = post_batch(
        client,
        [
            [
                (
                    "PATCH",
                    f"{root}accounts(_msdyn_company_value={company},accountnumber='B-2')",
                    {"name": "x"},
                ),
                ("PATCH", f"{root}accounts(msdyn_company={company},accountnumber='B-3')", {"name": "y"}),
            ]
        ],
    )
    assert part_statuses(response) == [400]
    assert "The key in the request URI is not valid" in response.text
    assert client.get("accounts").json()["value"] == []
