"""References by alternate key: lookup parts of a key are written with the referenced row's id."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from dualbus.shared.errors import LookupUnresolvedError
from dualbus.shared.maps import (
    Scalar,
    bind_reference,
    dataverse_key_literal,
    entity_path,
    expand_lookups,
    key_segment,
    load_maps,
    resolved_body,
    to_dataverse,
    to_fo,
)

MAPS = load_maps()
USMF_ID = "8f3c7a52-0d4b-4c1e-9a6f-2b1d5e7c9a10"
CUSTOMER = {
    "dataAreaId": "USMF",
    "CustomerAccount": "US 001",
    "CustomerGroupId": "30",
    "SalesCurrencyCode": "USD",
}


def company_ids(table: str, key: Mapping[str, Scalar]) -> str:
    """Resolve companies by code as a Dataverse lookup would; other tables are not expected here."""
    assert table == "cdm_companies"
    return {"USMF": USMF_ID}.get(str(key["cdm_companycode"]), "")


def test_entity_path_resolves_the_company_part_of_the_key() -> None:
    """An account is addressed by its company's id, in the documented _<column>_value form, and its number."""
    change = to_dataverse(MAPS["customers"], CUSTOMER)
    path = entity_path(MAPS, change, company_ids)
    assert path == f"accounts(_msdyn_company_value={USMF_ID},accountnumber='US%20001')"


def test_group_reference_resolves_its_company() -> None:
    """The customer group binding names the group by its company's id and its group id."""
    body = resolved_body(MAPS, to_dataverse(MAPS["customers"], CUSTOMER), company_ids)
    assert body["msdyn_customergroupid@odata.bind"] == (
        f"/msdyn_customergroups(_msdyn_company_value={USMF_ID},msdyn_groupid='30')"
    )
    assert body["msdyn_company@odata.bind"] == "/cdm_companies(cdm_companycode='USMF')"
    assert body["transactioncurrencyid@odata.bind"] == "/transactioncurrencies(isocurrencycode='USD')"


def test_without_a_resolver_natural_values_are_literals() -> None:
    """Without a resolver the key keeps the natural company code."""
    segment = key_segment(MAPS, "msdyn_customergroups", {"msdyn_company": "USMF", "msdyn_groupid": "30"})
    assert segment == "(msdyn_company='USMF',msdyn_groupid='30')"


def test_unknown_company_is_unresolved() -> None:
    """A company the resolver cannot find makes the reference unresolvable, naming the key part."""
    change = to_dataverse(MAPS["customers"], {**CUSTOMER, "dataAreaId": "ZZZZ"})
    with pytest.raises(LookupUnresolvedError, match="no cdm_companies row for 'ZZZZ'") as caught:
        entity_path(MAPS, change, company_ids)
    assert caught.value.field == "msdyn_company"


def test_cleared_binding_has_no_reference() -> None:
    """A cleared group lookup binds to null."""
    change = to_dataverse(MAPS["customers"], {**CUSTOMER, "CustomerGroupId": ""})
    group = next(b for b in change.lookups if b.navigation == "msdyn_customergroupid")
    assert bind_reference(MAPS, group, company_ids) is None


ROWS = {
    ("cdm_companies", "c-1"): {"cdm_companyid": "c-1", "cdm_companycode": "USMF"},
    ("msdyn_customergroups", "g-1"): {"msdyn_groupid": "30", "_msdyn_company_value": "c-1"},
}


def fetch(table: str, row_id: str) -> Mapping[str, object] | None:
    """Rows by id, as a Web API read by primary key returns them."""
    return ROWS.get((table, row_id))


def test_expand_lookups_turns_ids_into_key_columns() -> None:
    """Lookup ids read from the Web API become the targets' key columns, and a null id a cleared lookup."""
    row = {"accountnumber": "A", "_msdyn_company_value": "c-1", "_msdyn_customergroupid_value": "g-1"}
    row["_transactioncurrencyid_value"] = None
    expanded = expand_lookups(MAPS["customers"], row, fetch)
    assert expanded["msdyn_company"] == {"cdm_companycode": "USMF"}
    assert expanded["msdyn_customergroupid"] == {"msdyn_groupid": "30"}
    assert expanded["transactioncurrencyid"] is None
    back = to_fo(MAPS["customers"], expanded)
    assert (back.payload["dataAreaId"], back.payload["CustomerGroupId"]) == ("USMF", "30")


def test_expand_lookups_reports_a_dangling_id() -> None:
    """An id that points at no row is an unresolved lookup naming the navigation property."""
    with pytest.raises(LookupUnresolvedError, match="no cdm_companies row with id c-9") as caught:
        expand_lookups(MAPS["customers"], {"_msdyn_company_value": "c-9"}, fetch)
    assert caught.value.field == "msdyn_company"


def test_expand_lookups_keeps_rows_already_expanded() -> None:
    """A row that already carries the expanded lookup is left as it is."""
    row = {"msdyn_company": {"cdm_companycode": "DEMF"}, "_msdyn_company_value": "c-1"}
    assert expand_lookups(MAPS["customers"], row, fetch)["msdyn_company"] == {"cdm_companycode": "DEMF"}


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00.5+01:00", "2024-01-01T00:00:00.5+01:00"),
        ("not a date')/accounts('x", "'not a date'')/accounts(''x'"),
        ("2024-01-01T00:00:00,5Z", "'2024-01-01T00:00:00,5Z'"),  # Python's parser takes it; OData does not
        ("2024-01-01 00:00:00Z", "'2024-01-01 00:00:00Z'"),
        ("2024-01-01", "'2024-01-01'"),
    ],
)
def test_a_date_time_key_value_is_bare_only_when_it_is_a_date_and_time(value: str, literal: str) -> None:
    """Written bare, a value that is no date could end the key segment early: it stays quoted (no key)."""
    assert dataverse_key_literal("msdyn_internalorganizationhierarchies", "msdyn_validfrom", value) == literal
