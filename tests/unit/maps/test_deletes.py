"""What a delete carries beside its key, and the target key worked out from the key and those values."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualbus.shared.errors import TransformError
from dualbus.shared.maps import (
    Side,
    TableMap,
    delete_fields,
    load_maps,
    natural_key,
    target_key,
    to_dataverse,
    to_fo,
)
from tests.unit.maps.strategies import other_side, source_record

MAPS = load_maps()
FO_CONTACT_KEY = {
    "dataAreaId": "USMF",
    "ContactPersonPartyNumber": "000001",
    "AssociatedContactType": "Vendor",
    "AssociatedContactNumber": "V-1",
}
DV_CONTACT_KEY = {"msdyn_company": "USMF", "msdyn_contactpersonid": "CP-1"}
DIRECTIONS = [
    (table_map, source)
    for table_map in MAPS
    for source in ("fo", "dataverse")
    if table_map.carries(other_side(source))
]


def test_a_vendor_contact_deleted_in_fo_carries_its_contact_person_id():
    """Dataverse keys a contact by company and contact person id, which is no part of F&O's key."""
    contacts = MAPS["vendor_contacts"]
    assert delete_fields(contacts, "fo") == ("ContactPersonId",)
    values = {"ContactPersonId": "CP-1", **FO_CONTACT_KEY}
    assert target_key(contacts, "fo", values) == DV_CONTACT_KEY


def test_a_vendor_contact_deleted_in_dataverse_carries_its_party_number_and_vendor():
    """F&O's party number and vendor come from a column and an expanded lookup; the type is the constant."""
    contacts = MAPS["vendor_contacts"]
    assert delete_fields(contacts, "dataverse") == ("msdyn_partynumber", "msdyn_vendorcontactid")
    values = {
        "msdyn_partynumber": "000001",
        "msdyn_vendorcontactid": {"msdyn_vendoraccountnumber": "V-1"},
        **DV_CONTACT_KEY,
    }
    assert target_key(contacts, "dataverse", values) == FO_CONTACT_KEY


@pytest.mark.parametrize(("source", "key"), [("fo", FO_CONTACT_KEY), ("dataverse", DV_CONTACT_KEY)])
def test_a_vendor_contact_key_alone_names_no_target_row(source: Side, key: dict[str, object]):
    """Without the delete's values (a producer's older index entry) the target key cannot be worked out."""
    with pytest.raises(TransformError):
        target_key(MAPS["vendor_contacts"], source, key)


def test_a_composed_key_needs_only_its_parts():
    """Products compose Dataverse's product number from company and number, both in F&O's key already."""
    products = MAPS["products"]
    assert delete_fields(products, "fo") == ()
    key = {"dataAreaId": "USMF", "ProductNumber": "P-1"}
    assert target_key(products, "fo", key) == {"productnumber": "USMFP-1"}


def test_a_composed_part_outside_the_source_key_is_carried():
    """Were the product number composed from the item number, a delete would carry the item number."""
    products = MAPS["products"]
    fields = tuple(
        f.model_copy(update={"compose": ("dataAreaId", "ItemNumber")}) if f.compose else f
        for f in products.fields
    )
    by_item = products.model_copy(update={"fields": fields})
    assert delete_fields(by_item, "fo") == ("ItemNumber",)
    values = {"ItemNumber": "I-1", "dataAreaId": "USMF", "ProductNumber": "P-1"}
    assert target_key(by_item, "fo", values) == {"productnumber": "USMFI-1"}


@pytest.mark.parametrize("source", ["fo", "dataverse"])
def test_customers_need_nothing_beside_the_key(source: Side):
    """A customer's keys name each other: the group and terms lookups also feed dataAreaId, but need not."""
    assert delete_fields(MAPS["customers"], source) == ()


@pytest.mark.parametrize(
    ("table_map", "source"), DIRECTIONS, ids=[f"{m.name}-from-{s}" for m, s in DIRECTIONS]
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_key_and_delete_values_give_the_key_a_change_would_write(
    table_map: TableMap, source: Side, data: st.DataObject
):
    """For every shipped map and direction, a delete addresses the row the row's changes wrote."""
    drawn = data.draw(source_record(table_map, source))
    # A source key part no field carries (vendor contacts' AssociatedContactType) is fixed by the filter.
    conditions = table_map.source_filter.fo if source == "fo" else table_map.source_filter.dataverse
    record = {**{c.field: c.value for c in conditions if c.op == "eq"}, **drawn}
    written = to_dataverse(table_map, record) if source == "fo" else to_fo(table_map, record)
    carried = {name: record[name] for name in delete_fields(table_map, source) if name in record}
    key = natural_key(table_map, source, record)
    assert target_key(table_map, source, {**carried, **key}) == dict(written.key)
