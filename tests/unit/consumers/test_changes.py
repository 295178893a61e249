"""An event becomes the target changes its area's maps imply, or a permanent error naming the problem."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dualbus.consumers import Reason, target_changes, verdict
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import EnvelopeError, LookupUnresolvedError, TransformError
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import Direction

MAPS = load_maps()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _event(origin, entity, key, data, *, area="currency", operation=Operation.UPDATE, version=3, base=None):
    return Envelope.for_change(
        origin=origin,
        area=area,
        entity=entity,
        key=key,
        operation=operation,
        source_version=version,
        time=NOW,
        data=data,
        base_version=base,
    )


def test_fo_currency_maps_to_a_dataverse_upsert():
    """An F&O currency becomes a transactioncurrencies change keyed by ISO code, values mapped."""
    event = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {"Name": "Euro", "Symbol": "€"})
    [change] = target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert change.table_map.dataverse_table == "transactioncurrencies"
    assert dict(change.key) == {"isocurrencycode": "EUR"}
    assert change.fields["currencyname"] == "Euro"
    assert change.fields["currencysymbol"] == "€"
    assert change.source_version == 3
    assert not change.delete


def test_the_base_version_travels_with_the_change():
    """The Dataverse version an F&O row last received reaches the sink's conflict rule, None when unknown."""
    known = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {"Name": "Euro"}, base=41)
    unknown = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {"Name": "Euro"})
    gone = known.model_copy(update={"operation": Operation.DELETE, "data": {}})
    changes = [
        target_changes(e, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)[0]
        for e in (known, unknown, gone)
    ]
    assert [c.base_version for c in changes] == [41, None, 41]


def test_dataverse_currency_maps_to_an_fo_upsert():
    """A Dataverse currency becomes a Currencies change keyed by CurrencyCode."""
    event = _event(
        Origin.DATAVERSE, "transactioncurrencies", {"isocurrencycode": "USD"}, {"currencyname": "Dollar"}
    )
    [change] = target_changes(event, area="currency", direction=Direction.TO_FO, maps=MAPS)
    assert dict(change.key) == {"CurrencyCode": "USD"}
    assert change.fields["Name"] == "Dollar"


def test_a_delete_carries_the_target_key_only():
    """A delete needs no data: the target's key is worked out from the source key."""
    event = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {}, operation=Operation.DELETE)
    [change] = target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert change.delete
    assert dict(change.key) == {"isocurrencycode": "EUR"}
    assert dict(change.fields) == {}


def test_a_delete_compares_no_column_its_key_is_only_copied_to():
    """A unit's symbol is also its first display name, which users edit: an F&O delete of the unit must not
    take a row named otherwise for another record (only what gives F&O's key beyond Dataverse's names one)."""
    gone = Operation.DELETE
    event = _event(Origin.FO, "UnitsOfMeasure", {"UnitSymbol": "ea"}, {}, area="product", operation=gone)
    [change] = target_changes(event, area="product", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert dict(change.key) == {"msdyn_symbol": "ea"}
    assert (dict(change.fields), change.lookups) == ({}, ())


def test_a_delete_key_may_differ_in_length_between_the_sides():
    """A product's two-part F&O key becomes the one composed Dataverse product number."""
    key = {"dataAreaId": "USMF", "ProductNumber": "P-1"}
    gone = Operation.DELETE
    event = _event(Origin.FO, "CDSReleasedDistinctProducts", key, {}, area="product", operation=gone)
    [change] = target_changes(event, area="product", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert dict(change.key) == {"productnumber": "USMFP-1"}


def test_a_delete_key_from_dataverse_reads_lookups_as_natural_values():
    """An account's key (company, account number) becomes the customer's dataAreaId and account."""
    key = {"msdyn_company": "USMF", "accountnumber": "C-1"}
    event = _event(Origin.DATAVERSE, "accounts", key, {}, area="customer", operation=Operation.DELETE)
    [change] = target_changes(event, area="customer", direction=Direction.TO_FO, maps=MAPS)
    assert dict(change.key) == {"dataAreaId": "USMF", "CustomerAccount": "C-1"}


@pytest.mark.parametrize(
    ("origin", "entity", "key", "direction"),
    [
        (
            Origin.DATAVERSE,
            "contacts",
            {"msdyn_company": "USMF", "msdyn_contactpersonid": "CP-1"},
            Direction.TO_FO,
        ),
        (
            Origin.FO,
            "CDSContactPersonsV2",
            {
                "dataAreaId": "USMF",
                "ContactPersonPartyNumber": "000001",
                "AssociatedContactType": "Vendor",
                "AssociatedContactNumber": "V-1",
            },
            Direction.TO_DATAVERSE,
        ),
    ],
    ids=["to-fo", "to-dataverse"],
)
def test_a_delete_whose_target_key_cannot_be_worked_out_is_a_mapping_error(origin, entity, key, direction):
    """A vendor contact delete without its values (an older index entry) is dead-lettered as MappingError."""
    event = _event(origin, entity, key, {}, area="vendor", operation=Operation.DELETE)
    with pytest.raises(TransformError) as caught:
        target_changes(event, area="vendor", direction=direction, maps=MAPS)
    assert not isinstance(caught.value, LookupUnresolvedError)
    assert caught.value.map_name == "vendor_contacts"
    decided = verdict(caught.value)
    assert decided.reason is Reason.MAPPING_ERROR
    assert "vendor_contacts" in decided.description


VENDOR_CONTACT_FO_KEY = {
    "dataAreaId": "USMF",
    "ContactPersonPartyNumber": "000001",
    "AssociatedContactType": "Vendor",
    "AssociatedContactNumber": "V-1",
}
VENDOR_CONTACT_DV_KEY = {"msdyn_company": "USMF", "msdyn_contactpersonid": "CP-1"}


def test_a_vendor_contact_deleted_in_fo_is_addressed_by_the_contact_person_id_it_carries():
    """The delete's data gives Dataverse's contact person id, which F&O's key lacks; filters do not apply."""
    key, data, gone = VENDOR_CONTACT_FO_KEY, {"ContactPersonId": "CP-1"}, Operation.DELETE
    event = _event(Origin.FO, "CDSContactPersonsV2", key, data, area="vendor", operation=gone)
    [change] = target_changes(event, area="vendor", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert (change.table_map.name, change.delete) == ("vendor_contacts", True)
    assert dict(change.key) == VENDOR_CONTACT_DV_KEY
    # Beyond that key, what names the record deleted: the sink leaves a row that holds another vendor now.
    assert dict(change.fields) == {"msdyn_partynumber": VENDOR_CONTACT_FO_KEY["ContactPersonPartyNumber"]}
    assert [(b.navigation, dict(b.key or {})) for b in change.lookups] == [
        (
            "msdyn_vendorcontactid",
            {
                "msdyn_company": VENDOR_CONTACT_FO_KEY["dataAreaId"],
                "msdyn_vendoraccountnumber": VENDOR_CONTACT_FO_KEY["AssociatedContactNumber"],
            },
        )
    ]


def test_a_vendor_contact_deleted_in_dataverse_is_addressed_by_party_number_and_vendor():
    """The delete's data gives F&O's party number and vendor (expanded lookup); the type is the constant."""
    data = {"msdyn_partynumber": "000001", "msdyn_vendorcontactid": {"msdyn_vendoraccountnumber": "V-1"}}
    event = _event(
        Origin.DATAVERSE, "contacts", VENDOR_CONTACT_DV_KEY, data, area="vendor", operation=Operation.DELETE
    )
    [change] = target_changes(event, area="vendor", direction=Direction.TO_FO, maps=MAPS)
    assert (change.table_map.name, change.delete) == ("vendor_contacts", True)
    assert dict(change.key) == VENDOR_CONTACT_FO_KEY
    assert dict(change.fields) == {}


def test_a_delete_missing_one_of_its_values_names_what_it_carried():
    """A delete whose data lacks the vendor cannot address the F&O row: MappingError naming what it had."""
    data = {"msdyn_partynumber": "000001"}
    event = _event(
        Origin.DATAVERSE, "contacts", VENDOR_CONTACT_DV_KEY, data, area="vendor", operation=Operation.DELETE
    )
    with pytest.raises(TransformError) as caught:
        target_changes(event, area="vendor", direction=Direction.TO_FO, maps=MAPS)
    decided = verdict(caught.value)
    assert decided.reason is Reason.MAPPING_ERROR
    assert "msdyn_partynumber" in decided.description


def test_an_event_of_another_area_is_an_envelope_error():
    """An event that does not belong to the consumer's area is refused as an invalid envelope."""
    event = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {})
    with pytest.raises(EnvelopeError, match="area"):
        target_changes(event, area="company", direction=Direction.TO_DATAVERSE, maps=MAPS)


def test_an_event_from_the_target_side_is_an_envelope_error():
    """A to-dataverse consumer refuses events that come from Dataverse."""
    event = _event(Origin.DATAVERSE, "transactioncurrencies", {"isocurrencycode": "EUR"}, {})
    with pytest.raises(EnvelopeError, match="comes from dataverse"):
        target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)


def test_an_entity_without_a_map_is_a_mapping_error():
    """An entity no map of the area takes is a TransformError naming the entity."""
    event = _event(Origin.FO, "Planets", {"Id": "x"}, {})
    with pytest.raises(TransformError, match="Planets"):
        target_changes(event, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)


def test_a_value_outside_the_value_map_names_map_and_field():
    """A value the map cannot carry raises a TransformError naming the map and the field."""
    key = {"dataAreaId": "USMF", "CustomerAccount": "C-1"}
    data = {"PartyType": "Organization", "OnHoldStatus": "Bogus"}
    event = _event(Origin.FO, "CustomersV3", key, data, area="customer")
    with pytest.raises(TransformError) as caught:
        target_changes(event, area="customer", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert caught.value.map_name == "customers"
    assert caught.value.field == "OnHoldStatus"


def test_a_repair_reapplies_the_version_the_target_holds():
    """A repair is stale only against a newer version; an ordinary change already against an equal one."""
    ordinary = _event(Origin.FO, "Currencies", {"CurrencyCode": "EUR"}, {"Name": "Euro"}, version=5)
    repair = ordinary.model_copy(update={"repair": True})
    [plain] = target_changes(ordinary, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    [again] = target_changes(repair, area="currency", direction=Direction.TO_DATAVERSE, maps=MAPS)
    assert (plain.is_stale(5), plain.is_stale(4), plain.is_stale(None)) == (True, False, False)
    assert (again.is_stale(5), again.is_stale(6)) == (False, True)


@pytest.mark.parametrize("value", [["Person"], {"kind": "Person"}])
def test_a_filter_field_holding_a_list_or_an_object_is_a_mapping_error(value) -> None:
    """An edited replay left a list where the vendors map's filter reads one value: a TypeError (retried as
    unexpected for the whole budget) before; now a TransformError, dead-lettered as a mapping error."""
    event = _event(
        Origin.FO,
        "VendorsV2",
        {"dataAreaId": "USMF", "VendorAccountNumber": "V-1"},
        {"VendorPartyType": value},
        area="vendor",
    )
    with pytest.raises(TransformError, match="'VendorPartyType' holds"):
        target_changes(event, area="vendor", direction=Direction.TO_DATAVERSE, maps=MAPS)
