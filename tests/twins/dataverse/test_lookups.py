"""Lookups are set through their navigation properties with ``@odata.bind``, as the Web API documents.

- Binds: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
- Undeclared navigation properties: tests/twins/dataverse/fixtures/README.md (web-api-client-errors.md).
"""

from __future__ import annotations

import httpx
import pytest

from tests.twins.dataverse.support import entity_id, error_of


@pytest.mark.parametrize(
    ("entity_set", "navigation"),
    [
        ("contacts", "parentcustomerid"),
        ("msdyn_vendors", "transactioncurrencyid"),
        ("products", "msdyn_company"),
    ],
)
def test_a_bind_to_a_navigation_property_the_table_lacks_is_refused(
    client: httpx.Client, entity_set: str, navigation: str
) -> None:
    """A bind of an undeclared navigation property answers 400 0x80048d19, as documented."""
    status, code, message = error_of(
        client.post(
            entity_set, json={f"{navigation}@odata.bind": "/accounts(00000000-0000-0000-0000-000000000001)"}
        )
    )
    assert (status, code) == (400, "0x80048d19")
    assert message.startswith(
        f"Error identified in Payload provided by the user for Entity :'{entity_set}'  ---->  "
        f"InnerException : Microsoft.OData.ODataException: An undeclared property '{navigation}' which "
        "only has property annotations in the payload but no property value was found in the payload."
    )


def test_an_annotation_of_an_undeclared_property_is_refused(client: httpx.Client) -> None:
    """An instance annotation of a property the type lacks is the same undeclared-property error."""
    response = client.post("accounts", json={"nosuch@OData.Community.Display.V1.FormattedValue": "x"})
    assert error_of(response)[:2] == (400, "0x80048d19")


@pytest.mark.parametrize(
    "body",
    [
        {"msdyn_company": "00000000-0000-0000-0000-000000000001"},
        {"_msdyn_company_value": "00000000-0000-0000-0000-000000000001"},
        {"parentcustomerid_account": "00000000-0000-0000-0000-000000000001"},
    ],
)
def test_a_lookup_written_as_a_plain_value_is_refused(client: httpx.Client, body: dict[str, str]) -> None:
    """A lookup is set through its navigation property, not as its column or lookup property."""
    entity_set = "contacts" if "parentcustomerid_account" in body else "accounts"
    status, _, _ = error_of(client.post(entity_set, json=body))
    assert status == 400
    assert client.get(entity_set).json()["value"] == []


def test_binds_set_lookups_of_every_kind_and_null_clears_them(client: httpx.Client, company: str) -> None:
    """A bind by id, by alternate key or to a Customer lookup's table sets it; a null bind clears it."""
    account = entity_id(client.post("accounts", json={"name": "Parent"}))
    contact = client.post(
        "contacts",
        json={
            "lastname": "Bloggs",
            "msdyn_contactpersonid": "P-1",
            "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='USMF')",
            "parentcustomerid_account@odata.bind": f"/accounts({account})",
        },
    )
    assert contact.status_code == 204, contact.text
    url = f"contacts({entity_id(contact)})"
    row = client.get(url).json()
    assert (row["_msdyn_company_value"], row["_parentcustomerid_value"]) == (company, account)
    assert client.patch(url, json={"parentcustomerid_account@odata.bind": None}).status_code == 204
    assert client.get(url).json()["_parentcustomerid_value"] is None


def test_a_bind_to_a_row_of_another_table_is_refused(client: httpx.Client, company: str) -> None:
    """A bind whose URL names a row of a table other than the navigation property's target answers 400."""
    response = client.post(
        "accounts", json={"transactioncurrencyid@odata.bind": f"/cdm_companies({company})"}
    )
    assert response.status_code == 400
    assert client.get("accounts").json()["value"] == []
