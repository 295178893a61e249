"""F&O holds no null: a field never written, or written null, reads as its type's empty value.

X++ treats one value of each type as null (an empty string, 0, 1900-01-01) and a record inserted with only
some fields set has the others blank; see ``FoField.empty_value`` for the sources.
"""

from __future__ import annotations

import httpx

from tests.twins.fo.conftest import KEY_PATH, customer

CUSTOMERS = "/data/CustomersV3"


def test_a_field_never_written_reads_as_its_empty_value(client: httpx.Client) -> None:
    """A new customer's unset e-mail reads "", its credit limit 0, a date 1900-01-01, its on-hold status the
    enum's element of value 0; an enum whose values are not published stays null."""
    assert client.post(CUSTOMERS, json=customer("US-001")).status_code == 201
    row = client.get(KEY_PATH).json()
    assert (row["PrimaryContactEmail"], row["CreditLimit"]) == ("", 0)
    assert row["DualbusSourceVersion"] == 0
    dates = [name for name, value in row.items() if isinstance(value, str) and value.startswith("1900-01-01")]
    assert dates, "no date field of CustomersV3 read as F&O's empty date"
    assert row["OnHoldStatus"] == "No"
    assert row["QMSApprovedCustomerListCheckMethod"] is None


def test_a_selected_field_never_written_reads_as_its_empty_value(client: httpx.Client) -> None:
    """A query's $select answers the empty values too, not null."""
    client.post(CUSTOMERS, json=customer("US-001"))
    response = client.get(CUSTOMERS, params={"$select": "CustomerAccount,PrimaryContactEmail,CreditLimit"})
    [row] = response.json()["value"]
    assert (row["PrimaryContactEmail"], row["CreditLimit"]) == ("", 0)


def test_a_null_written_to_a_text_field_is_kept_as_an_empty_string(client: httpx.Client) -> None:
    """OData lets a null through to a field that may be null; F&O keeps it as "" and answers "" after."""
    client.post(CUSTOMERS, json=customer("US-001", PrimaryContactEmail="a@example.com"))
    assert client.patch(KEY_PATH, json={"PrimaryContactEmail": None}).status_code == 204
    assert client.get(KEY_PATH).json()["PrimaryContactEmail"] == ""


def test_a_filter_compares_the_empty_value_of_a_field_never_written(client: httpx.Client) -> None:
    """`CreditLimit eq 0` finds the customer created without one; `eq null` finds nothing."""
    client.post(CUSTOMERS, json=customer("US-001"))
    client.post(CUSTOMERS, json=customer("US-002", CreditLimit=500))
    zero = client.get(CUSTOMERS, params={"$filter": "CreditLimit eq 0", "$select": "CustomerAccount"})
    assert [row["CustomerAccount"] for row in zero.json()["value"]] == ["US-001"]
    none = client.get(CUSTOMERS, params={"$filter": "PrimaryContactEmail eq null"})
    assert none.json()["value"] == []


def test_rows_sort_by_the_empty_value_of_a_field_never_written(client: httpx.Client) -> None:
    """An unset credit limit sorts as 0: after a negative one, before a positive one."""
    client.post(CUSTOMERS, json=customer("US-001", CreditLimit=5))
    client.post(CUSTOMERS, json=customer("US-002"))
    client.post(CUSTOMERS, json=customer("US-003", CreditLimit=-5))
    response = client.get(CUSTOMERS, params={"$orderby": "CreditLimit desc", "$select": "CustomerAccount"})
    assert [row["CustomerAccount"] for row in response.json()["value"]] == ["US-001", "US-002", "US-003"]
