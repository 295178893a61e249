"""Create, upsert, conditional writes and delete behave as the Dataverse Web API documents them.

- Create: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
- Upsert and If-Match / If-None-Match:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
- Optimistic concurrency:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
"""

from __future__ import annotations

import httpx

from dualbus.sandbox.dataverse import RunningDataverse
from dualbus.sandbox.identity import user_id_for
from tests.twins.dataverse.support import account_url, client_for, entity_id


def test_create_answers_204_with_entity_id(client: httpx.Client) -> None:
    """POST creates a row and answers 204 with the new row's URL in OData-EntityId."""
    response = client.post("transactioncurrencies", json={"isocurrencycode": "EUR", "currencyname": "Euro"})
    assert response.status_code == 204
    row = client.get(f"transactioncurrencies({entity_id(response)})").json()
    assert row["currencyname"] == "Euro"
    assert "exchangerate" not in row  # required columns are not enforced, nor given values


def test_create_with_representation_answers_201(client: httpx.Client) -> None:
    """POST with Prefer: return=representation answers 201 with the row and its ETag."""
    response = client.post(
        "cdm_companies", json={"cdm_companycode": "DEMF"}, headers={"Prefer": "return=representation"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["cdm_companycode"] == "DEMF"
    assert body["@odata.etag"] == f'W/"{body["versionnumber"]}"'


def test_upsert_by_alternate_key_creates_then_updates(client: httpx.Client, company: str) -> None:
    """PATCH by alternate key creates the row when missing and updates the same row the second time."""
    url = account_url(company, "C-001")
    first = client.patch(url, json={"name": "Adatum"})
    second = client.patch(url, json={"name": "Adatum Corp"})
    assert first.status_code == second.status_code == 204
    # As the upsert page shows it: OData-EntityId is the key URL the request addressed, both times.
    assert first.headers["OData-EntityId"] == second.headers["OData-EntityId"] == f"{client.base_url}{url}"
    rows = client.get("accounts").json()["value"]
    assert [(r["name"], r["accountnumber"], r["_msdyn_company_value"]) for r in rows] == [
        ("Adatum Corp", "C-001", company)
    ]


def test_get_by_one_column_alternate_key(client: httpx.Client) -> None:
    """A row is addressable by a one-column alternate key, case-insensitively as SQL collation compares."""
    client.post("transactioncurrencies", json={"isocurrencycode": "EUR", "currencyname": "Euro"})
    response = client.get("transactioncurrencies(isocurrencycode='eur')")
    assert response.status_code == 200
    assert response.json()["currencyname"] == "Euro"


def test_if_match_star_does_not_create(client: httpx.Client, company: str) -> None:
    """PATCH with If-Match: * on a missing row answers 404 and creates nothing."""
    response = client.patch(account_url(company, "NOPE"), json={"name": "x"}, headers={"If-Match": "*"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "0x80060891"
    assert client.get("accounts").json()["value"] == []


def test_if_none_match_star_does_not_update(client: httpx.Client, company: str) -> None:
    """PATCH with If-None-Match: * on an existing row answers 412 and leaves it as it was."""
    url = account_url(company, "C-002")
    client.patch(url, json={"name": "Original"})
    response = client.patch(url, json={"name": "Changed"}, headers={"If-None-Match": "*"})
    assert response.status_code == 412
    assert response.json()["error"]["code"] == "0x80040237"
    assert client.get(url).json()["name"] == "Original"


def test_stale_etag_is_refused_with_412(client: httpx.Client, company: str) -> None:
    """PATCH with If-Match carrying an ETag older than the row's answers 412 ConcurrencyVersionMismatch."""
    url = account_url(company, "C-003")
    client.patch(url, json={"name": "v1"})
    stale = client.get(url).json()["@odata.etag"]
    client.patch(url, json={"name": "v2"})
    refused = client.patch(url, json={"name": "v3"}, headers={"If-Match": stale})
    assert refused.status_code == 412
    assert refused.json()["error"]["code"] == "0x80060882"
    current = client.get(url).json()
    assert current["name"] == "v2"
    accepted = client.patch(url, json={"name": "v3"}, headers={"If-Match": current["@odata.etag"]})
    assert accepted.status_code == 204


def test_delete_by_alternate_key_then_404(client: httpx.Client, company: str) -> None:
    """DELETE removes a row (204); deleting or reading it again answers 404."""
    url = account_url(company, "C-004")
    client.patch(url, json={"name": "Gone soon"})
    assert client.delete(url).status_code == 204
    again = client.delete(url)
    assert again.status_code == 404
    assert client.get(url).status_code == 404


def test_missing_row_by_id_has_the_documented_error(client: httpx.Client) -> None:
    """GET by an unknown id answers 404 with ObjectDoesNotExist (0x80040217) in the Web API error shape."""
    response = client.get("accounts(00000000-0000-0000-0000-000000000001)")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "0x80040217",
        "message": "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist",
    }


def test_bind_by_key_and_by_id_resolves_to_lookup_column(client: httpx.Client, company: str) -> None:
    """@odata.bind by alternate key or by id sets the lookup, read back as _x_value."""
    currency = entity_id(client.post("transactioncurrencies", json={"isocurrencycode": "USD"}))
    response = client.post(
        "accounts",
        json={
            "name": "Bound",
            "accountnumber": "C-005",
            "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='USMF')",
            "transactioncurrencyid@odata.bind": f"transactioncurrencies({currency})",
        },
    )
    assert response.status_code == 204
    row = client.get(f"accounts({entity_id(response)})").json()
    assert row["_msdyn_company_value"] == company
    assert row["_transactioncurrencyid_value"] == currency


def test_bind_to_missing_row_is_refused(client: httpx.Client, company: str) -> None:
    """A bind to a row that does not exist is refused with 404 and nothing is written."""
    by_key = client.patch(
        account_url(company, "C-006"),
        json={"transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='XXX')"},
    )
    by_id = client.post(
        "accounts",
        json={"msdyn_company@odata.bind": "/cdm_companies(00000000-0000-0000-0000-00000000beef)"},
    )
    assert (by_key.status_code, by_key.json()["error"]["code"]) == (404, "0x80060891")
    assert (by_id.status_code, by_id.json()["error"]["code"]) == (404, "0x80040217")
    assert client.get("accounts").json()["value"] == []


def test_column_over_max_length_is_refused(client: httpx.Client, company: str) -> None:
    """A value longer than the column's declared maximum answers 400 with 0x80044331 naming the column."""
    response = client.patch(account_url(company, "C-007"), json={"name": "x" * 161})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "0x80044331"
    assert "'name' attribute of the 'account' entity" in error["message"]
    assert "'160'" in error["message"]


def test_modified_by_names_the_last_writer(
    twin: RunningDataverse, client: httpx.Client, company: str
) -> None:
    """_modifiedby_value is the user of the token that wrote last; _createdby_value stays the creator."""
    url = account_url(company, "C-008")
    client.patch(url, json={"name": "By dualbus"})
    with client_for(twin, "maker") as maker:
        maker.patch(url, json={"name": "By a maker"})
    row = client.get(url).json()
    assert row["_modifiedby_value"] == user_id_for("maker")
    assert row["_createdby_value"] == user_id_for("dualbus")
    assert row["versionnumber"] > 0
    assert row["modifiedon"].endswith("Z")


def test_unknown_entity_set_is_404(client: httpx.Client) -> None:
    """An entity set the twin does not serve (names are case sensitive) answers 404 'Resource not found'."""
    response = client.get("Accounts")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "0x8006088a",
        "message": "Resource not found for the segment 'Accounts'.",
    }


def test_upsert_with_representation_answers_201_created_then_200_updated(
    client: httpx.Client, company: str
) -> None:
    """With return=representation an upsert answers 201 when it created the row and 200 when it updated it."""
    url = account_url(company, "C-010")
    prefer, select = {"Prefer": "return=representation"}, {"$select": "accountid"}
    created = client.patch(url, json={"name": "First"}, headers=prefer, params=select)
    updated = client.patch(url, json={"name": "Second"}, headers=prefer, params=select)
    assert (created.status_code, updated.status_code) == (201, 200)
    assert created.json()["accountid"] == updated.json()["accountid"]
    assert set(updated.json()) == {"@odata.context", "@odata.etag", "accountid"}
    assert updated.json()["@odata.context"].endswith("$metadata#accounts(accountid)/$entity")
    assert updated.headers["ETag"] == updated.json()["@odata.etag"]
    assert updated.headers["Preference-Applied"] == "return=representation"


def test_upsert_by_id_answers_204_whether_it_creates_or_updates(client: httpx.Client) -> None:
    """Without the preference an upsert by primary id answers 204 both when it creates and when it updates."""
    url = "transactioncurrencies(11111111-2222-3333-4444-555555555555)"
    created = client.patch(url, json={"isocurrencycode": "NOK"})
    updated = client.patch(url, json={"currencyname": "Krone"})
    assert (created.status_code, updated.status_code) == (204, 204)
    assert created.headers["OData-EntityId"].endswith(url)
    row = client.get(url).json()
    assert (row["transactioncurrencyid"], row["isocurrencycode"], row["currencyname"]) == (
        "11111111-2222-3333-4444-555555555555",
        "NOK",
        "Krone",
    )


def test_update_with_if_match_star_and_representation_answers_200(client: httpx.Client) -> None:
    """PATCH with If-Match: * (an update only) and return=representation answers 200 with the row."""
    currency = entity_id(client.post("transactioncurrencies", json={"isocurrencycode": "SEK"}))
    response = client.patch(
        f"transactioncurrencies({currency})",
        json={"currencyname": "Krona"},
        headers={"If-Match": "*", "Prefer": "return=representation"},
    )
    assert response.status_code == 200
    assert response.json()["currencyname"] == "Krona"


def test_a_read_with_the_current_etag_in_if_none_match_is_304(client: httpx.Client, company: str) -> None:
    """GET with If-None-Match naming the row's version: 304 and no body; once it changed, 200 and the row.

    perform-conditional-operations-using-web-api.md, "Conditional retrievals"; annotations never get 304.
    """
    url = account_url(company, "C-304")
    client.patch(url, json={"name": "v1"})
    current = client.get(url).json()["@odata.etag"]
    unchanged = client.get(url, headers={"If-None-Match": current})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["OData-Version"] == "4.0"
    annotated = client.get(url, headers={"If-None-Match": current, "Prefer": 'odata.include-annotations="*"'})
    assert annotated.status_code == 200
    client.patch(url, json={"name": "v2"})
    changed = client.get(url, headers={"If-None-Match": current})
    assert (changed.status_code, changed.json()["name"]) == (200, "v2")
