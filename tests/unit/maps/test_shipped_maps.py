"""The maps dualbus ships: they load, use the names of docs/entities.md, and carry rows both ways."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.maps import (
    AREAS,
    Direction,
    TableMap,
    load_maps,
    natural_key,
    passes_source_filter,
    to_dataverse,
    to_fo,
)
from shared.topology import Direction as TopologyDirection
from shared.topology import default_topology
from tests.unit.maps.strategies import other_side, source_record

MAPS = load_maps()
SIDES_OF = [(m, side) for m in MAPS for side in ("fo", "dataverse") if m.carries(other_side(side))]

# docs/entities.md: entity, table and natural keys of every map.
ENTITIES = {
    ("LegalEntities", "cdm_companies"): (("LegalEntityId",), ("cdm_companycode",)),
    ("Currencies", "transactioncurrencies"): (("CurrencyCode",), ("isocurrencycode",)),
    ("LegalEntities", "msdyn_internalorganizations"): (("LegalEntityId",), ("msdyn_id",)),
    ("OperatingUnits", "msdyn_internalorganizations"): (("OperatingUnitNumber",), ("msdyn_id",)),
    ("OrganizationHierarchyTypes", "msdyn_internalorganizationhierarchytypes"): (("Name",), ("msdyn_name",)),
    ("OrganizationHierarchyPurposes", "msdyn_internalorganizationhierarchypurposes"): (
        ("HierarchyType", "HierarchyPurpose"),
        ("msdyn_hierarchytype", "msdyn_hierarchypurpose"),
    ),
    ("OrganizationHierarchiesPublished", "msdyn_internalorganizationhierarchies"): (
        ("HierarchyType", "ChildOrganizationPartyNumber"),
        ("msdyn_hierarchytype", "msdyn_childorganization"),
    ),
    ("CustomerGroups", "msdyn_customergroups"): (
        ("dataAreaId", "CustomerGroupId"),
        ("msdyn_company", "msdyn_groupid"),
    ),
    ("CustomersV3", "accounts"): (("dataAreaId", "CustomerAccount"), ("msdyn_company", "accountnumber")),
    ("VendorGroups", "msdyn_vendorgroups"): (
        ("dataAreaId", "VendorGroupId"),
        ("msdyn_company", "msdyn_vendorgroup"),
    ),
    ("VendorsV2", "msdyn_vendors"): (
        ("dataAreaId", "VendorAccountNumber"),
        ("msdyn_company", "msdyn_vendoraccountnumber"),
    ),
    ("ReleasedDistinctProductsV2", "products"): (
        ("dataAreaId", "ItemNumber"),
        ("msdyn_company", "productnumber"),
    ),
}
ONE_WAY_AREAS = {"organisation", "product"}


def test_every_documented_pair_has_a_map_with_its_keys() -> None:
    """Each entity/table pair of docs/entities.md has exactly one map, keyed as documented."""
    found = {(m.fo_entity, m.dataverse_table): (m.fo_key, m.dataverse_key) for m in MAPS}
    assert found == ENTITIES
    assert len(MAPS) == len(ENTITIES)


def test_every_map_is_in_a_known_area_with_the_right_direction() -> None:
    """Organisation and product maps go one way to Dataverse; the others go both ways."""
    for table_map in MAPS:
        assert table_map.area in AREAS
        expected = Direction.FO_TO_DATAVERSE if table_map.area in ONE_WAY_AREAS else Direction.TWO_WAY
        assert table_map.direction is expected, table_map.name
    assert {m.area for m in MAPS} == set(AREAS)


@pytest.mark.parametrize(("table_map", "source"), SIDES_OF, ids=lambda v: getattr(v, "name", v))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_map_carries_generated_rows(table_map: TableMap, source: str, data: st.DataObject) -> None:
    """A row built from a map's own field definitions transforms and the change is keyed as the map says."""
    record = data.draw(source_record(table_map, source))
    if source == "fo":
        change = to_dataverse(table_map, record)
        assert change.target == table_map.dataverse_table
        assert list(change.key) == list(table_map.dataverse_key)
        assert set(change.payload) <= {f.dataverse for f in table_map.fields}
    else:
        fo_change = to_fo(table_map, record)
        assert fo_change.target == table_map.fo_entity
        assert fo_change.key == natural_key(table_map, "fo", fo_change.payload)
        assert list(fo_change.key) == list(table_map.fo_key)


def test_one_way_maps_refuse_the_other_direction() -> None:
    """A map that goes only to Dataverse will not produce an F&O change."""
    products = MAPS["products"]
    with pytest.raises(ValueError, match="fo_to_dataverse only"):
        to_fo(products, {"productnumber": "P1", "msdyn_company": {"cdm_companycode": "USMF"}})


def test_customer_to_account_binds_company_group_and_currency() -> None:
    """A customer becomes an account whose lookups are bound by the targets' alternate keys."""
    record = {
        "dataAreaId": "USMF",
        "CustomerAccount": "US-001",
        "OrganizationName": "Contoso",
        "PartyType": "Organization",
        "CustomerGroupId": "30",
        "SalesCurrencyCode": "USD",
        "OnHoldStatus": "Invoice",
    }
    change = to_dataverse(MAPS["customers"], record)
    body = change.body()
    assert change.key == {"msdyn_company": "USMF", "accountnumber": "US-001"}
    assert body["msdyn_company@odata.bind"] == "/cdm_companies(cdm_companycode='USMF')"
    assert (
        body["msdyn_customergroupid@odata.bind"]
        == "/msdyn_customergroups(msdyn_company='USMF',msdyn_groupid='30')"
    )
    assert body["transactioncurrencyid@odata.bind"] == "/transactioncurrencies(isocurrencycode='USD')"
    assert body["msdyn_creditonhold"] == 192350001
    assert body["customertypecode"] == 3
    assert "PartyType" not in body
    assert "CustomerGroupId" not in body


def test_account_to_customer_gets_plain_values_back() -> None:
    """An account with expanded lookups becomes a customer with plain company, group and currency codes."""
    account = {
        "accountnumber": "US-002",
        "name": "Fabrikam",
        "msdyn_creditonhold": 192350002,
        "customertypecode": 3,
        "msdyn_company": {"cdm_companycode": "USMF"},
        "msdyn_customergroupid": {"msdyn_groupid": "10"},
        "transactioncurrencyid": {"isocurrencycode": "EUR"},
    }
    change = to_fo(MAPS["customers"], account)
    assert change.key == {"dataAreaId": "USMF", "CustomerAccount": "US-002"}
    assert change.payload["CustomerGroupId"] == "10"
    assert change.payload["SalesCurrencyCode"] == "EUR"
    assert change.payload["OnHoldStatus"] == "All"
    assert change.payload["PartyType"] == "Organization"
    assert "customertypecode" not in change.payload


def test_cleared_group_lookup_empties_the_group_but_keeps_the_company() -> None:
    """An account whose group lookup is null clears CustomerGroupId and leaves dataAreaId from the company."""
    account = {"accountnumber": "A", "msdyn_company": "USMF", "msdyn_customergroupid": None}
    change = to_fo(MAPS["customers"], account)
    assert change.payload["CustomerGroupId"] is None
    assert change.payload["dataAreaId"] == "USMF"


def test_missing_fields_are_left_alone_and_null_fields_are_cleared() -> None:
    """A field absent from the source row is not written; a null one is written as null."""
    change = to_dataverse(MAPS["company"], {"LegalEntityId": "USMF", "Name": None})
    assert change.payload == {"cdm_companycode": "USMF", "cdm_name": None}
    partial = to_dataverse(MAPS["company"], {"LegalEntityId": "USMF"})
    assert partial.payload == {"cdm_companycode": "USMF"}


def test_currency_precision_and_exchange_rate() -> None:
    """Currency rounding 0.01 becomes two decimals, and a new Dataverse currency gets exchange rate 1."""
    change = to_dataverse(MAPS["currency"], {"CurrencyCode": "EUR", "RoundingPrecision": 0.01})
    assert change.payload["currencyprecision"] == 2
    assert change.payload["exchangerate"] == 1
    back = to_fo(MAPS["currency"], {"isocurrencycode": "JPY", "currencyprecision": 0, "exchangerate": 0.0068})
    assert back.payload["RoundingPrecision"] == 1
    assert "exchangerate" not in back.payload


def test_defaults_fill_a_missing_hold_status() -> None:
    """A vendor without an on-hold status reaches Dataverse as not on hold, and back as No."""
    record = {"dataAreaId": "USMF", "VendorAccountNumber": "V1", "OnHoldStatus": None}
    assert to_dataverse(MAPS["vendors"], record).payload["msdyn_vendorhold"] == 192350000
    row = {
        "msdyn_vendoraccountnumber": "V1",
        "msdyn_company": {"cdm_companycode": "USMF"},
        "msdyn_vendorhold": None,
    }
    assert to_fo(MAPS["vendors"], row).payload["OnHoldStatus"] == "No"


def test_organisation_maps_mark_the_internal_organisation_type() -> None:
    """Legal entities and operating units land in one table, told apart by their organisation type."""
    legal = to_dataverse(MAPS["organisation_legal_entities"], {"LegalEntityId": "USMF", "Name": "Contoso"})
    unit = to_dataverse(
        MAPS["organisation_operating_units"], {"OperatingUnitNumber": "000123", "Name": "Sales"}
    )
    assert legal.target == unit.target == "msdyn_internalorganizations"
    assert (legal.payload["msdyn_type"], unit.payload["msdyn_type"]) == (1, 2)
    assert legal.key == {"msdyn_id": "USMF"}


def test_product_type_and_currency() -> None:
    """A released service product becomes a Services product priced in its sales currency."""
    record = {"dataAreaId": "USMF", "ItemNumber": "S-1", "ProductType": "Service", "SalesCurrencyCode": "USD"}
    change = to_dataverse(MAPS["products"], record)
    assert change.payload["producttypecode"] == 3
    assert (
        change.body()["transactioncurrencyid@odata.bind"] == "/transactioncurrencies(isocurrencycode='USD')"
    )


def test_source_filter_takes_only_organisation_customers() -> None:
    """Organisation customers pass the customer map's filter; persons and rows without a type do not."""
    customers = MAPS["customers"]
    assert passes_source_filter(customers, "fo", {"PartyType": "Organization"})
    assert not passes_source_filter(customers, "fo", {"PartyType": "Person"})
    assert not passes_source_filter(customers, "fo", {})
    assert passes_source_filter(customers, "dataverse", {"customertypecode": 3})
    assert not passes_source_filter(customers, "dataverse", {"customertypecode": 11})


def test_maps_without_filters_take_every_row() -> None:
    """A map with no filter on a side takes any row from it."""
    assert passes_source_filter(MAPS["company"], "fo", {})
    assert passes_source_filter(MAPS["vendors"], "dataverse", {"anything": 1})


def test_natural_key_reads_expanded_and_plain_lookups() -> None:
    """The Dataverse natural key reads the company from an expanded lookup or a plain value alike."""
    customers = MAPS["customers"]
    expanded = {"accountnumber": "A", "msdyn_company": {"cdm_companycode": "USMF"}}
    plain = {"accountnumber": "A", "msdyn_company": "USMF"}
    assert natural_key(customers, "dataverse", expanded) == natural_key(customers, "dataverse", plain)
    assert natural_key(customers, "fo", {"dataAreaId": "USMF", "CustomerAccount": "A"}) == {
        "dataAreaId": "USMF",
        "CustomerAccount": "A",
    }


def test_map_set_lookups() -> None:
    """The map set finds maps by name, by area and by the source they read."""
    assert {m.name for m in MAPS.in_area("customer")} == {"customers", "customer_groups"}
    assert [m.name for m in MAPS.for_source("fo", "CustomersV3")] == ["customers"]
    assert {m.name for m in MAPS.for_source("fo", "LegalEntities")} == {
        "company",
        "organisation_legal_entities",
    }
    assert MAPS.for_source("dataverse", "products") == ()
    assert "customers" in MAPS
    with pytest.raises(KeyError, match="no map named 'nope'"):
        MAPS["nope"]


def test_for_source_narrows_by_area() -> None:
    """Legal entities feed one map per area: the company map and the organisation map."""
    assert [m.name for m in MAPS.for_source("fo", "LegalEntities", area="organisation")] == [
        "organisation_legal_entities"
    ]
    assert [m.name for m in MAPS.for_source("fo", "LegalEntities", area="company")] == ["company"]


def test_maps_agree_with_the_topology() -> None:
    """Every topology area has maps, and an area's maps go exactly the ways its subscriptions do."""
    topology = default_topology()
    assert set(topology.areas) == {m.area for m in MAPS}
    for table_map in MAPS:
        topic = topology.topic(table_map.area)
        subscribed = {s.direction for s in topic.subscriptions}
        expected = {TopologyDirection.TO_DATAVERSE}
        if table_map.carries("fo"):
            expected.add(TopologyDirection.TO_FO)
        assert subscribed == expected, table_map.name
