"""Reconcile's comparison of one map's rows, on rows in memory: equality rules, drift kinds, scope."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualbus.ops.reconcile import DriftKind, FieldDrift, MapComparison, same_value, source_side
from dualbus.shared.errors import TransformError
from dualbus.shared.maps import load_maps, to_dataverse

MAPS = load_maps()
CUSTOMERS = MAPS["customers"]


def fo_customer(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "dataAreaId": "usmf",
        "CustomerAccount": "US-001",
        "OrganizationName": "Contoso Pharmaceuticals",
        "PartyType": "Organization",
        "CustomerGroupId": "10",
        "SalesCurrencyCode": "USD",
        "CreditLimit": 5000.0,
        "DeliveryAddressStreet": "1 Main Street",
        "DeliveryAddressCity": "Seattle",
        "DeliveryAddressZipCode": "98052",
        "DeliveryAddressCountryRegionISOCode": "USA",
        "PrimaryContactPhone": "+1 425 555 0100",
        "PrimaryContactEmail": "ap@contoso.example.com",
        "OnHoldStatus": "No",
    }
    row.update(changes)
    return row


def dv_account(**changes: Any) -> dict[str, Any]:
    """The account a consumer writes for ``fo_customer()``, as read back with lookups resolved."""
    row: dict[str, Any] = {
        "msdyn_company": {"cdm_companycode": "USMF"},
        "accountnumber": "US-001",
        "name": "Contoso Pharmaceuticals",
        "creditlimit": 5000,
        "address1_line1": "1 Main Street",
        "address1_city": "Seattle",
        "address1_postalcode": "98052",
        "address1_country": "USA",
        "telephone1": "+1 425 555 0100",
        "emailaddress1": "ap@contoso.example.com",
        "msdyn_onholdstatus": 806380000,
        "customertypecode": 3,
        # The resolver leaves out key columns that are lookups themselves (the group's company).
        "msdyn_customergroupid": {"msdyn_groupid": "10"},
        "transactioncurrencyid": {"isocurrencycode": "USD"},
        "dualbus_sourceversion": 17,
    }
    row.update(changes)
    return row


def compare(fo_rows: list[dict[str, Any]], dv_rows: list[dict[str, Any]], **options: Any) -> list[Any]:
    comparison = MapComparison(
        MAPS, options.pop("table_map", CUSTOMERS), options.pop("source", "fo"), **options
    )
    target, source = (dv_rows, fo_rows) if comparison.source == "fo" else (fo_rows, dv_rows)
    for row in target:
        comparison.add_target(row)
    found = [outcome for row in source if (outcome := comparison.check_source(row)) is not None]
    drifts = [drift for _, drift in found if drift is not None]
    return drifts + [drift for drift, _ in comparison.leftovers()]


def test_numbers_compare_numerically() -> None:
    """An integer, a float and a decimal string of one number are equal; different numbers are not."""
    assert same_value(100, 100.0)
    assert same_value("100.00", 100)
    assert same_value(0.1 + 0.2, 0.30000000000000004)
    assert not same_value(100, 100.5)


def test_booleans_and_strings_are_strict() -> None:
    """True never equals 1, and strings differ in case unless folding is asked for (keys, lookups)."""
    assert not same_value(True, 1)
    assert same_value(False, False)
    assert not same_value("Seattle", "seattle")
    assert same_value("USMF", "usmf", fold=True)
    assert not same_value("1", "01")


def test_none_missing_and_empty_are_one() -> None:
    """None, an empty string and a missing value are the same; a value is not the same as none."""
    assert same_value(None, "")
    assert same_value("", None)
    assert not same_value(None, 0)
    assert not same_value("x", None)


def test_rows_in_step_show_no_drift() -> None:
    """An account holding exactly the mapped state of its customer is no drift, whatever the key's case."""
    assert compare([fo_customer()], [dv_account()]) == []


@pytest.mark.parametrize("source", ["fo", "dataverse"])
def test_fos_no_value_of_a_field_that_cannot_be_null_is_dataverses_null(source: str) -> None:
    """An account without a credit limit is in step with its customer's 0 (F&O holds no null), read from
    either side; 0 against another number still drifts."""
    assert compare([fo_customer(CreditLimit=0)], [dv_account(creditlimit=None)], source=source) == []
    on_hold = compare([fo_customer(OnHoldStatus="No")], [dv_account(msdyn_onholdstatus=None)], source=source)
    assert on_hold == []  # CustVendorBlocked's element of value 0
    [drift] = compare([fo_customer(CreditLimit=0)], [dv_account(creditlimit=10)], source=source)
    assert [(f.fo, f.dataverse) for f in drift.fields] == [(0, 10)]


def test_differing_field_is_reported_with_both_mapped_values() -> None:
    """A differing field names its Dataverse column and gives F&O's mapped value and Dataverse's value."""
    [drift] = compare([fo_customer(OnHoldStatus="Invoice")], [dv_account(name="Contoso Pharma")])
    assert drift.kind is DriftKind.DIFFERS
    assert drift.company == "USMF"
    assert drift.key == {"dataAreaId": "USMF", "CustomerAccount": "US-001"}
    assert set(drift.fields) == {
        FieldDrift("name", "Contoso Pharmaceuticals", "Contoso Pharma"),
        FieldDrift("msdyn_onholdstatus", 806380001, 806380000),
    }


def test_differing_lookup_is_reported_by_natural_key() -> None:
    """A lookup pointing at another row shows both rows' natural keys."""
    [drift] = compare([fo_customer()], [dv_account(transactioncurrencyid={"isocurrencycode": "EUR"})])
    assert drift.fields == (FieldDrift("transactioncurrencyid", "USD", "EUR"),)


def test_cleared_lookup_is_drift() -> None:
    """A Dataverse lookup left empty while F&O names a group is a differing field."""
    [drift] = compare([fo_customer()], [dv_account(msdyn_customergroupid=None)])
    assert drift.fields == (FieldDrift("msdyn_customergroupid", "10", None),)


def test_missing_on_each_side() -> None:
    """A customer without its account is missing in Dataverse; an account without its customer in F&O."""
    drifts = compare(
        [fo_customer(CustomerAccount="US-002")],
        [dv_account(accountnumber="US-003")],
    )
    kinds = {(d.kind, d.key["CustomerAccount"]) for d in drifts}
    assert kinds == {(DriftKind.MISSING_IN_DATAVERSE, "US-002"), (DriftKind.MISSING_IN_FO, "US-003")}
    assert all(d.fields == () for d in drifts)


def test_rows_outside_the_source_filter_are_not_drift() -> None:
    """A person customer and a non-customer account are outside the map, so neither is missing anywhere."""
    person = fo_customer(CustomerAccount="US-009", PartyType="Person")
    vendor_account = dv_account(accountnumber="US-010", customertypecode=11)
    assert compare([fo_customer(), person], [dv_account(), vendor_account]) == []


def test_company_filter_limits_both_sides() -> None:
    """With companies given, rows of other companies are neither compared nor reported."""
    other = fo_customer(dataAreaId="demf", CustomerAccount="DE-001")
    orphan = dv_account(msdyn_company={"cdm_companycode": "DEMF"}, accountnumber="DE-002")
    assert compare([fo_customer(), other], [dv_account(), orphan], companies=frozenset({"USMF"})) == []
    assert len(compare([fo_customer(), other], [dv_account(), orphan])) == 2


def fo_product(company: str, number: str) -> dict[str, Any]:
    return {
        "dataAreaId": company,
        "ProductNumber": number,
        "ProductName": f"Product {number}",
        "ProductType": "Item",
        "IsStockedProduct": "Yes",
        "SalesUnitDecimalPrecision": 2,
    }


def dv_product(company: str, number: str, **changes: Any) -> dict[str, Any]:
    """The product a consumer writes for ``fo_product``, read back with its company lookup resolved."""
    return {**to_dataverse(MAPS["products"], fo_product(company, number)).as_record(), **changes}


def test_company_filter_limits_products_whose_dataverse_key_names_no_company() -> None:
    """Products (Dataverse key: productnumber alone) take their company from dataAreaId and the lookup."""
    fo_rows = [fo_product("usmf", "P-1"), fo_product("demf", "P-2")]
    dv_rows = [dv_product("usmf", "P-1", name="Renamed"), dv_product("demf", "P-3")]
    assert dv_rows[1]["msdyn_CompanyId"] == {"cdm_companycode": "demf"}
    usmf = compare(fo_rows, dv_rows, table_map=MAPS["products"], companies=frozenset({"USMF"}))
    assert [(d.company, d.kind) for d in usmf] == [("USMF", DriftKind.DIFFERS)]
    everything = compare(fo_rows, dv_rows, table_map=MAPS["products"])
    assert sorted((d.company, d.kind) for d in everything) == [
        ("DEMF", DriftKind.MISSING_IN_DATAVERSE),
        ("DEMF", DriftKind.MISSING_IN_FO),
        ("USMF", DriftKind.DIFFERS),
    ]


def test_constants_tell_apart_maps_sharing_a_table() -> None:
    """Operating units in the internal organisations table are not legal entities missing in F&O."""
    legal = MAPS["organisation_legal_entities"]
    fo_rows = [{"LegalEntityId": "USMF", "PartyNumber": "000000001", "Name": "Contoso USA"}]
    dv_rows = [
        {
            "msdyn_partynumber": "000000001",
            "msdyn_companycode": "USMF",
            "msdyn_name": "Contoso USA",
            "msdyn_type": 806380000,
        },
        {"msdyn_partynumber": "000000002", "msdyn_name": "Sales", "msdyn_type": 806380001},
    ]
    assert compare(fo_rows, dv_rows, table_map=legal) == []


def test_dataverse_as_source_compares_in_fo_names() -> None:
    """With Dataverse as the source, the account is mapped to F&O's names and compared with the customer."""
    drifts = compare(
        [fo_customer(SalesCurrencyCode="EUR", DeliveryAddressCity="Redmond")],
        [dv_account()],
        source="dataverse",
    )
    [drift] = drifts
    assert set(drift.fields) == {
        FieldDrift("DeliveryAddressCity", "Redmond", "Seattle"),
        FieldDrift("SalesCurrencyCode", "EUR", "USD"),
    }


def test_untransformable_source_row_raises() -> None:
    """A source row the map rejects raises TransformError, for the caller to report as a problem."""
    comparison = MapComparison(MAPS, CUSTOMERS, "fo")
    comparison.add_target(dv_account())
    with pytest.raises(TransformError, match="OnHoldStatus"):
        comparison.check_source(fo_customer(OnHoldStatus="Sometimes"))
    # Its account is not reported as missing in F&O: F&O has the record, in a shape the map rejects.
    assert list(comparison.leftovers()) == []


def test_source_side_follows_the_map_direction() -> None:
    """Two-way and F&O → Dataverse maps read F&O as the truth unless overridden (two-way only)."""
    assert source_side(CUSTOMERS) == "fo"
    assert source_side(CUSTOMERS, "dataverse") == "dataverse"
    assert source_side(MAPS["products"], "dataverse") == "fo"


@settings(max_examples=60, deadline=None)
@given(
    account=st.text(alphabet="ABCDEFGHJK0123456789-", min_size=1, max_size=20),
    name=st.text(max_size=100),
    credit=st.one_of(st.none(), st.integers(0, 10**9), st.floats(0, 1e9, allow_nan=False)),
    hold=st.sampled_from(["No", "Invoice", "All", "Payment", "Requisition", "Never"]),
)
def test_a_consumer_written_row_never_drifts(
    account: str, name: str, credit: float | None, hold: str
) -> None:
    """Whatever the customer holds, the account the map writes for it compares equal to it."""
    customer = fo_customer(
        CustomerAccount=account, OrganizationName=name, CreditLimit=credit, OnHoldStatus=hold
    )
    written = to_dataverse(CUSTOMERS, customer).as_record()
    written["msdyn_company"] = {"cdm_companycode": "USMF"}
    assert compare([customer], [written]) == []
