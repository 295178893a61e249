"""Writes are read against the d365 schema of their table, as the Web API reads them; nothing else is served.

Error texts: tests/twins/dataverse/fixtures/README.md and sandbox/dataverse/{errors,value_errors}.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dualbus.d365 import DV_EXTENSION_COLUMNS, dataverse_tables
from dualbus.sandbox.dataverse import TABLES
from dualbus.sandbox.dataverse.tables import SYSTEM_COLUMNS
from tests.twins.dataverse.support import account_url, entity_id, error_of

_CONVERT = (
    "An error occurred while validating input parameters: Microsoft.OData.ODataException: Cannot convert the "
    "literal '{}' to the expected type '{}'."
)


def _invalid_property(name: str, logical: str) -> str:
    return (
        "An error occurred while validating input parameters: Microsoft.Crm.CrmException: Invalid property "
        f"'{name}' was found in entity 'Microsoft.Dynamics.CRM.{logical}'. ---> "
        "Microsoft.OData.ODataException: Does not support untyped value in non-open type."
    )


def test_the_twin_serves_exactly_the_d365_tables_plus_the_prerequisite_column() -> None:
    """Every table of d365/dataverse is served with its own columns and dualbus_sourceversion, no more."""
    assert set(TABLES) == set(dataverse_tables())
    for name, table in TABLES.items():
        assert set(table.columns) == set(dataverse_tables()[name].columns) | set(DV_EXTENSION_COLUMNS)
        assert table.alternate_keys == dataverse_tables()[name].alternate_keys


def test_service_document_lists_exactly_the_d365_tables(client: httpx.Client) -> None:
    """The service document names the d365 entity sets and no other."""
    assert {entry["name"] for entry in client.get("").json()["value"]} == set(dataverse_tables())


@pytest.mark.parametrize("entity_set", sorted(TABLES))
def test_every_table_takes_the_prerequisite_version_column(client: httpx.Client, entity_set: str) -> None:
    """dualbus_sourceversion, the one column a deployment adds, is writable on every served table."""
    created = client.post(entity_set, json={"dualbus_sourceversion": 7})
    assert created.status_code == 204, created.text
    row = client.get(f"{entity_set}({entity_id(created)})").json()
    assert row["dualbus_sourceversion"] == 7


@pytest.mark.parametrize(
    ("entity_set", "name", "logical"),
    [
        ("accounts", "Name", "account"),  # the documented example: names are case sensitive
        ("accounts", "msdyn_creditonhold", "account"),  # no source knows this column
        ("msdyn_vendors", "msdyn_vendorname", "msdyn_vendor"),
        ("contacts", "parentcustomerid", "contact"),  # a Customer lookup is no property of its own
    ],
)
def test_a_property_the_table_lacks_is_refused_as_documented(
    client: httpx.Client, entity_set: str, name: str, logical: str
) -> None:
    """A body property that is no column of the table answers 400 with the documented Invalid property."""
    assert error_of(client.post(entity_set, json={name: "x"})) == (
        400,
        "0x0",
        _invalid_property(name, logical),
    )
    assert client.get(entity_set).json()["value"] == []


@pytest.mark.parametrize(("entity_set", "column"), [("contacts", "fullname"), ("uoms", "isschedulebaseuom")])
def test_a_read_only_column_is_refused(client: httpx.Client, entity_set: str, column: str) -> None:
    """A column the reference lists as read-only (not the platform's own) is refused with 400."""
    value: object = "Joe Bloggs" if column == "fullname" else True
    status, _, message = error_of(client.post(entity_set, json={column: value}))
    assert status == 400
    assert f"'{column}'" in message


def test_platform_columns_in_a_body_are_ignored(client: httpx.Client, company: str) -> None:
    """versionnumber, createdon, modifiedon and the created/modified-by values of a body are ignored."""
    url = account_url(company, "SYS-1")
    client.patch(url, json={"name": "Sys"})
    before = client.get(url).json()
    forged = dict.fromkeys(("createdon", "modifiedon"), "2000-01-01T00:00:00Z")
    forged |= {"versionnumber": 1, "_createdby_value": company, "_modifiedby_value": company}
    assert set(forged) == SYSTEM_COLUMNS
    assert client.patch(url, json=forged).status_code == 204
    after = client.get(url).json()
    assert after["createdon"] == before["createdon"]
    assert after["_createdby_value"] == before["_createdby_value"] != company
    assert after["versionnumber"] > before["versionnumber"]


_HIERARCHIES = "msdyn_internalorganizationhierarchies"


@pytest.mark.parametrize(
    ("entity_set", "body", "expected"),
    [
        ("accounts", {"numberofemployees": "12"}, ("12", "Edm.Int32")),
        ("accounts", {"numberofemployees": 2**31}, (str(2**31), "Edm.Int32")),
        ("accounts", {"name": 5}, ("5", "Edm.String")),
        ("accounts", {"msdyn_onetimecustomer": "yes"}, ("yes", "Edm.Boolean")),
        ("accounts", {"msdyn_onholdstatus": True}, ("true", "Edm.Int32")),
        ("accounts", {"creditlimit": "100"}, ("100", "Edm.Decimal")),
        ("accounts", {"address1_latitude": "north"}, ("north", "Edm.Double")),
        ("accounts", {"dualbus_sourceversion": 1.5}, ("1.5", "Edm.Int64")),
        ("accounts", {"accountid": "not-a-guid"}, ("not-a-guid", "Edm.Guid")),
        (_HIERARCHIES, {"msdyn_validfrom": "yesterday"}, ("yesterday", "Edm.DateTimeOffset")),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused(
    client: httpx.Client, entity_set: str, body: dict[str, object], expected: tuple[str, str]
) -> None:
    """A value OData cannot convert to the column's type answers 400 "Cannot convert the literal"."""
    assert error_of(client.post(entity_set, json=body)) == (400, "0x0", _CONVERT.format(*expected))


@pytest.mark.parametrize(
    ("entity_set", "body"),
    [
        ("accounts", {"msdyn_onholdstatus": 806380006}),
        ("accounts", {"statecode": 2}),
        ("msdyn_vendors", {"msdyn_onholdstatus": 1}),
        ("products", {"msdyn_fieldserviceproducttype": 0}),
    ],
)
def test_an_option_the_column_lacks_is_refused(
    client: httpx.Client, entity_set: str, body: dict[str, int]
) -> None:
    """A choice value outside the column's options answers 400 PicklistValueOutOfRange (0x8004431A)."""
    assert error_of(client.post(entity_set, json=body)) == (
        400,
        "0x8004431A",
        "The picklist value is out of the range.",
    )


@pytest.mark.parametrize(
    ("entity_set", "body", "code"),
    [
        ("accounts", {"numberofemployees": 1_000_000_001}, "0x8004432F"),
        ("transactioncurrencies", {"currencyprecision": 11}, "0x8004432F"),
        ("transactioncurrencies", {"exchangerate": 100_000_000_001}, "0x80044330"),
        ("accounts", {"creditlimit": 100_000_000_000_000.01}, "0x80040317"),
        ("products", {"price": -0.01}, "0x80040317"),
        ("accounts", {"address1_longitude": -180.5}, "0x80061004"),
        ("accounts", {"dualbus_sourceversion": -1}, "0x80061004"),
    ],
)
def test_a_number_outside_the_column_range_is_refused(
    client: httpx.Client, entity_set: str, body: dict[str, float], code: str
) -> None:
    """Integer, decimal, money, double and bigint values outside min/max answer 400 with their own code."""
    assert error_of(client.post(entity_set, json=body))[:2] == (400, code)
    assert client.get(entity_set).json()["value"] == []


@pytest.mark.parametrize(
    ("entity_set", "column", "limit", "logical"),
    [("accounts", "name", 160, "account"), ("cdm_companies", "cdm_companycode", 30, "cdm_company")],
)
def test_a_string_over_the_max_length_is_refused(
    client: httpx.Client, entity_set: str, column: str, limit: int, logical: str
) -> None:
    """A string one character over MaxLength answers 400 StringLengthTooLong naming column, table, limit."""
    status, code, message = error_of(client.post(entity_set, json={column: "x" * (limit + 1)}))
    assert (status, code) == (400, "0x80044331")
    assert message == (
        f"A validation error occurred.  The length of the '{column}' attribute of the '{logical}' entity "
        f"exceeded the maximum allowed length of '{limit}'."
    )


_ACCEPTED: dict[str, Any] = {
    "name": "x" * 160,
    "numberofemployees": 1_000_000_000,
    "creditlimit": 100_000_000_000_000,
    "address1_latitude": -90,
    "address1_longitude": 180.0,
    "msdyn_onholdstatus": 806380005,
    "customertypecode": 3,
    "statecode": 0,
    "msdyn_onetimecustomer": False,
    "description": None,
    "dualbus_sourceversion": 2**63 - 1,
    "@odata.type": "Microsoft.Dynamics.CRM.account",
    "name@OData.Community.Display.V1.FormattedValue": "ignored",
}


def test_values_at_the_limits_and_annotations_are_accepted(client: httpx.Client) -> None:
    """Boundary values, nulls, booleans, choices and annotations of declared properties are accepted."""
    created = client.post("accounts", json=_ACCEPTED)
    assert created.status_code == 204, created.text
    row = client.get(f"accounts({entity_id(created)})").json()
    assert {k: row.get(k) for k in _ACCEPTED if "@" not in k} == {
        k: v for k, v in _ACCEPTED.items() if "@" not in k
    }


def test_decimal_and_datetime_values_are_accepted(client: httpx.Client) -> None:
    """A decimal as an integer or a fraction and an ISO 8601 date-time are accepted for their columns."""
    currency = client.post("transactioncurrencies", json={"exchangerate": 1, "currencyprecision": 2})
    hierarchy = client.post(
        "msdyn_internalorganizationhierarchies", json={"msdyn_validfrom": "2024-05-01T00:00:00Z"}
    )
    assert (currency.status_code, hierarchy.status_code) == (204, 204)
    assert (
        client.patch(f"transactioncurrencies({entity_id(currency)})", json={"exchangerate": 0.5}).status_code
        == 204
    )


def test_a_refused_write_changes_nothing(client: httpx.Client, company: str) -> None:
    """An update refused for one bad property leaves the row exactly as it was (all or nothing)."""
    url = account_url(company, "ATOMIC")
    client.patch(url, json={"name": "Before"})
    before = client.get(url).json()
    assert client.patch(url, json={"name": "After", "msdyn_onholdstatus": 7}).status_code == 400
    assert client.get(url).json() == before


def test_required_columns_are_not_enforced(client: httpx.Client) -> None:
    """Columns marked required in the schema may be left out: the Web API enforces no ApplicationRequired."""
    assert client.post("products", json={"productnumber": "P-1"}).status_code == 204


def test_a_query_naming_a_property_the_table_lacks_is_refused(client: httpx.Client) -> None:
    """$select, $filter and $orderby may name only the table's properties, as documented for $select."""
    for params in ({"$select": "Name"}, {"$filter": "Name eq 'x'"}, {"$orderby": "Name desc"}):
        assert error_of(client.get("accounts", params=params)) == (
            400,
            "0x0",
            "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'.",
        )
    allowed = {"$select": "name,_msdyn_company_value,versionnumber", "$filter": "modifiedon ne null"}
    assert client.get("accounts", params=allowed).status_code == 200
