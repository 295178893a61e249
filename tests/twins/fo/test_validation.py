"""Writes are checked against the entity's schema and refused in F&O's error envelope, as real F&O does.

The inner messages are the OData library's wording:
https://github.com/OData/odata.net/blob/015837a4c188edd4d3f81550bb432c6527745b54/src/Microsoft.OData.Core/Microsoft.OData.Core.txt
"""

from __future__ import annotations

import httpx
import pytest

from tests.twins.fo.conftest import KEY_PATH, customer

CUSTOMERS = "/data/CustomersV3"
ENUM = "Microsoft.Dynamics.DataEntities.CustVendorBlocked"


def _inner(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("", "An error has occurred.")
    inner: dict[str, str] = error["innererror"]
    assert set(inner) == {"message", "type", "stacktrace"}
    return inner


def test_unknown_property_is_refused_with_the_odata_library_text(client: httpx.Client) -> None:
    """A property CustomerV3 does not declare is refused with 400 and ODL's 'does not exist' message."""
    inner = _inner(client.post(CUSTOMERS, json=customer("US-001", Foo=1)))
    assert inner == {
        "message": "The property 'Foo' does not exist on type 'Microsoft.Dynamics.DataEntities.CustomerV3'. "
        "Make sure to only use property names that are defined by the type or mark the type as open type.",
        "type": "Microsoft.OData.ODataException",
        "stacktrace": "",
    }
    assert client.get(CUSTOMERS).json()["value"] == []


@pytest.mark.parametrize("name", ["ModifiedDateTime", "ModifiedBy", "ProductName", "customeraccount"])
def test_fields_standard_entities_lack_are_unknown(client: httpx.Client, name: str) -> None:
    """Modified stamps, another entity's field and a wrongly cased name are all unknown properties."""
    inner = _inner(client.post(CUSTOMERS, json=customer("US-001", **{name: "x"})))
    assert inner["message"].startswith(f"The property '{name}' does not exist on type ")


def test_unknown_property_in_a_patch_is_refused(client: httpx.Client) -> None:
    """An update naming an unknown property changes nothing and answers 400."""
    client.post(CUSTOMERS, json=customer("US-001"))
    _inner(client.patch(KEY_PATH, json={"CreditLimit": 5, "Nope": 1}))
    assert client.get(KEY_PATH).json()["CreditLimit"] == 0  # as created: F&O's 0 for no credit limit


def test_odata_annotations_in_a_body_are_ignored(client: httpx.Client) -> None:
    """@odata.* instance and property annotations are read past, not written."""
    body = customer("US-001", **{"@odata.type": "#Microsoft.Dynamics.DataEntities.CustomerV3"})
    body["OrganizationName@odata.type"] = "String"
    created = client.post(CUSTOMERS, json=body)
    assert created.status_code == 201, created.text
    assert client.patch(KEY_PATH, json={"@odata.etag": 'W/"0"', "CreditLimit": 1}).status_code == 204
    row = client.get(KEY_PATH).json()
    assert "@odata.type" not in row
    assert "OrganizationName@odata.type" not in row


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("CreditLimit", "lots", "Cannot convert the literal 'lots' to the expected type 'Edm.Decimal'."),
        ("CreditLimit", True, "Cannot convert the literal 'true' to the expected type 'Edm.Decimal'."),
        ("OrganizationName", 12, "Cannot convert the literal '12' to the expected type 'Edm.String'."),
        (
            "OrganizationName",
            {"a": 1},
            """Cannot convert the literal '{"a":1}' to the expected type 'Edm.String'.""",
        ),
        ("ConsolidationDay", 1.5, "Cannot convert the literal '1.5' to the expected type 'Edm.Int32'."),
        (
            "ConsolidationDay",
            2**31,
            "Cannot convert the literal '2147483648' to the expected type 'Edm.Int32'.",
        ),
        (
            "ConsolidationDay",
            -(2**31) - 1,
            "Cannot convert the literal '-2147483649' to the expected type 'Edm.Int32'.",
        ),
        ("AddressRecordId", "7", "Cannot convert the literal '7' to the expected type 'Edm.Int64'."),
        (
            "OnHoldStatus",
            "Sometimes",
            f"Cannot convert the literal 'Sometimes' to the expected type '{ENUM}'.",
        ),
        (
            "OnHoldStatus",
            0,
            f"Cannot convert the literal '0' to the expected type '{ENUM}'.",
        ),
        (
            "AddressValidTo",
            "2026-01-31",
            "Cannot convert the literal '2026-01-31' to the expected type 'Edm.DateTimeOffset'.",
        ),
        (
            "AddressValidTo",
            "2026-01-31T12:00:00",
            "Cannot convert the literal '2026-01-31T12:00:00' to the expected type 'Edm.DateTimeOffset'.",
        ),
        (
            "AddressValidTo",
            "31/01/2026",
            "Cannot convert the literal '31/01/2026' to the expected type 'Edm.DateTimeOffset'.",
        ),
    ],
)
def test_values_of_the_wrong_type_are_refused(
    client: httpx.Client, field: str, value: object, expected: str
) -> None:
    """Wrong JSON types, enum numbers or unknown members, out-of-range integers and bad dates answer 400."""
    inner = _inner(client.post(CUSTOMERS, json=customer("US-001", **{field: value})))
    assert inner == {"message": expected, "type": "Microsoft.OData.ODataException", "stacktrace": ""}


def test_int64_range_is_that_of_a_signed_64_bit_integer(client: httpx.Client) -> None:
    """An Int64 takes 2**63 - 1 and refuses 2**63."""
    assert client.post(CUSTOMERS, json=customer("US-001", AddressRecordId=2**63 - 1)).status_code == 201
    inner = _inner(client.post(CUSTOMERS, json=customer("US-002", AddressRecordId=2**63)))
    assert inner["message"] == f"Cannot convert the literal '{2**63}' to the expected type 'Edm.Int64'."


def test_well_formed_values_are_written_as_given(client: httpx.Client) -> None:
    """An enum member name, an offset date-time, a decimal and an Int32 are accepted and read back."""
    values = {"OnHoldStatus": "Invoice", "AddressValidTo": "2026-01-31T12:00:00Z", "CreditLimit": 2500.5}
    response = client.post(CUSTOMERS, json=customer("US-001", ConsolidationDay=15, **values))
    assert response.status_code == 201, response.text
    row = client.get(KEY_PATH).json()
    assert {k: row[k] for k in values} == values


def test_null_in_a_non_nullable_non_string_field_is_refused(client: httpx.Client) -> None:
    """null for a Nullable=false decimal answers ODL's null message; null for a string is accepted."""
    inner = _inner(client.post(CUSTOMERS, json=customer("US-001", CreditLimit=None)))
    assert inner["message"] == (
        "A null value was found for the property named 'CreditLimit', which has the expected type "
        "'Edm.Decimal[Nullable=False]'. "
        "The expected type 'Edm.Decimal[Nullable=False]' does not allow null values."
    )
    assert client.post(CUSTOMERS, json=customer("US-001", OrganizationName=None)).status_code == 201


def test_key_fields_cannot_change_on_patch(client: httpx.Client) -> None:
    """A PATCH that names the row's key unchanged passes; one that moves it is refused and changes nothing."""
    client.post(CUSTOMERS, json=customer("US-001"))
    assert client.patch(KEY_PATH, json={"CustomerAccount": "US-001", "CreditLimit": 1}).status_code == 204
    assert client.patch(KEY_PATH, json={"dataAreaId": "demf"}).status_code == 400
    assert client.get(KEY_PATH).json()["dataAreaId"] == "usmf"


def test_company_ids_answer_in_lower_case(client: httpx.Client) -> None:
    """A dataAreaId written in upper case is stored and answered in lower case."""
    created = client.post(CUSTOMERS, json=customer("US-001", company="USMF"))
    assert created.json()["dataAreaId"] == "usmf"
    assert client.get(KEY_PATH).json()["dataAreaId"] == "usmf"


def test_extension_fields_exist_on_every_entity_and_are_checked(client: httpx.Client) -> None:
    """dualbus's one prerequisite field, DualbusSourceVersion (Int64), is writable and validated; no other."""
    ok = {"DualbusSourceVersion": 2**40}
    assert client.post(CUSTOMERS, json=customer("US-001", **ok)).status_code == 201
    currency = {"CurrencyCode": "EUR", "Name": "Euro", **ok}
    assert client.post("/data/Currencies", json=currency).status_code == 201
    assert _inner(client.post(CUSTOMERS, json=customer("US-003", DualbusSourceVersion="1")))
    unknown = _inner(client.post(CUSTOMERS, json=customer("US-004", DualbusSyncHash="a")))
    assert "The property 'DualbusSyncHash' does not exist" in unknown["message"]
