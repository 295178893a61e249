"""The maps dualbus ships: they load, use the names of docs/entities.md, and carry rows both ways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualbus.shared.maps import (
    AREAS,
    Direction,
    TableMap,
    load_maps,
    natural_key,
    passes_source_filter,
    target_key,
    to_dataverse,
    to_fo,
)
from dualbus.shared.topology import Direction as TopologyDirection
from dualbus.shared.topology import default_topology
from tests.unit.maps.strategies import other_side, source_record

MAPS = load_maps()
SIDES_OF = [(m, side) for m in MAPS for side in ("fo", "dataverse") if m.carries(other_side(side))]

# docs/entities.md: entity, table and natural keys of every map, as dual-write's maps pair them.
ENTITIES = {
    "company": ("LegalEntities", "cdm_companies", ("LegalEntityId",), ("cdm_companycode",)),
    "currency": ("Currencies", "transactioncurrencies", ("CurrencyCode",), ("isocurrencycode",)),
    "organisation_legal_entities": (
        "LegalEntities",
        "msdyn_internalorganizations",
        ("PartyNumber",),
        ("msdyn_partynumber",),
    ),
    "organisation_operating_units": (
        "OperatingUnits",
        "msdyn_internalorganizations",
        ("PartyNumber",),
        ("msdyn_partynumber",),
    ),
    "organisation_hierarchy_types": (
        "OrganizationHierarchyTypes",
        "msdyn_internalorganizationhierarchytypes",
        ("Name",),
        ("msdyn_name",),
    ),
    "organisation_hierarchy_purposes": (
        "OrganizationHierarchyPurposes",
        "msdyn_internalorganizationhierarchypurposes",
        ("HierarchyPurpose", "HierarchyType"),
        ("msdyn_hierarchypurpose", "msdyn_hierarchytype"),
    ),
    "organisation_hierarchies": (
        "OrganizationHierarchyPublished",
        "msdyn_internalorganizationhierarchies",
        ("HierarchyType", "ChildOrganizationPartyNumber", "validFrom", "validTo"),
        ("msdyn_hierarchytypeid", "msdyn_childid", "msdyn_validfrom", "msdyn_validto"),
    ),
    "payment_terms": (
        "PaymentTerms",
        "msdyn_paymentterms",
        ("dataAreaId", "Name"),
        ("msdyn_company", "msdyn_name"),
    ),
    "customer_groups": (
        "CustomerGroups",
        "msdyn_customergroups",
        ("dataAreaId", "CustomerGroupId"),
        ("msdyn_company", "msdyn_groupid"),
    ),
    "customers": (
        "CustomersV3",
        "accounts",
        ("dataAreaId", "CustomerAccount"),
        ("msdyn_company", "accountnumber"),
    ),
    "customer_contacts": (
        "CustomersV3",
        "contacts",
        ("dataAreaId", "CustomerAccount"),
        ("msdyn_company", "msdyn_contactpersonid"),
    ),
    "vendor_groups": (
        "VendorGroups",
        "msdyn_vendorgroups",
        ("dataAreaId", "VendorGroupId"),
        ("msdyn_company", "msdyn_vendorgroup"),
    ),
    "vendors": (
        "VendorsV2",
        "msdyn_vendors",
        ("dataAreaId", "VendorAccountNumber"),
        ("msdyn_company", "msdyn_vendoraccountnumber"),
    ),
    "vendor_contacts": (
        "CDSContactPersonsV2",
        "contacts",
        ("dataAreaId", "ContactPersonPartyNumber", "AssociatedContactType", "AssociatedContactNumber"),
        ("msdyn_company", "msdyn_contactpersonid"),
    ),
    "units": ("UnitsOfMeasure", "uoms", ("UnitSymbol",), ("msdyn_symbol",)),
    "products": (
        "CDSReleasedDistinctProducts",
        "products",
        ("dataAreaId", "ProductNumber"),
        ("productnumber",),
    ),
    "shared_product_details": (
        "ReleasedProductsV2",
        "msdyn_sharedproductdetails",
        ("dataAreaId", "ItemNumber"),
        ("msdyn_company", "msdyn_itemnumber"),
    ),
}
# Dual-write's maps of reference data set up in F&O (organisation, products, units, companies) go one way.
TWO_WAY = {
    "currency",
    "payment_terms",
    "customer_groups",
    "customers",
    "customer_contacts",
    "vendor_groups",
    "vendors",
    "vendor_contacts",
}


def test_every_documented_pair_has_a_map_with_its_keys() -> None:
    """Each map pairs the entity and table of docs/entities.md, keyed as documented."""
    found = {m.name: (m.fo_entity, m.dataverse_table, m.fo_key, m.dataverse_key) for m in MAPS}
    assert found == ENTITIES


def test_the_documented_map_table_counts_each_map_s_fields_and_lookups() -> None:
    """docs/entities.md's "carries" column says how many fields and lookups each map has."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "entities.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| [a-z]+ \| `([a-z_]+)` \|.*\| (\d+) fields, (\d+) lookups \|$", text, re.MULTILINE)
    documented = {name: (int(fields), int(lookups)) for name, fields, lookups in rows}
    assert documented == {m.name: (len(m.fields), len(m.lookups)) for m in MAPS}


def test_every_map_is_in_a_known_area_with_the_right_direction() -> None:
    """Reference data mastered in F&O goes one way to Dataverse; the rest goes both ways, as in dual-write."""
    for table_map in MAPS:
        assert table_map.area in AREAS
        expected = Direction.TWO_WAY if table_map.name in TWO_WAY else Direction.FO_TO_DATAVERSE
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
    with pytest.raises(ValueError, match="fo_to_dataverse only"):
        to_fo(MAPS["products"], {"productnumber": "P1", "msdyn_CompanyId": {"cdm_companycode": "USMF"}})


def test_customer_to_account_binds_company_group_currency_and_terms() -> None:
    """A customer becomes an account whose lookups are bound by the targets' alternate keys."""
    record = {
        "dataAreaId": "USMF",
        "CustomerAccount": "US-001",
        "OrganizationName": "Contoso",
        "PartyType": "Organization",
        "CustomerGroupId": "30",
        "SalesCurrencyCode": "USD",
        "PaymentTerms": "Net30",
        "OnHoldStatus": "Invoice",
        "CreditLimitIsMandatory": "Yes",
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
    assert (
        body["msdyn_paymentterm@odata.bind"] == "/msdyn_paymentterms(msdyn_company='USMF',msdyn_name='Net30')"
    )
    assert body["msdyn_onholdstatus"] == 806380001
    assert body["msdyn_creditlimitismandatory"] is True
    assert body["customertypecode"] == 3
    assert "PartyType" not in body


def test_account_to_customer_gets_plain_values_back() -> None:
    """An account with expanded lookups becomes a customer with plain company, group and currency codes."""
    account = {
        "accountnumber": "US-002",
        "name": "Fabrikam",
        "msdyn_onholdstatus": 806380002,
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
    assert "LanguageId" not in change.payload  # dual-write's en-us default would overwrite on every update
    assert "customertypecode" not in change.payload


def test_on_hold_values_outside_dual_writes_value_map_are_refused() -> None:
    """F&O's PurchOrder hold has no option in dual-write's value map: a transform error, not a guess."""
    record = {
        "dataAreaId": "USMF",
        "CustomerAccount": "A",
        "PartyType": "Organization",
        "OnHoldStatus": "PurchOrder",
    }
    with pytest.raises(ValueError, match="not in the value map"):
        to_dataverse(MAPS["customers"], record)


def test_cleared_group_lookup_empties_the_group_but_keeps_the_company() -> None:
    """An account whose group lookup is null clears CustomerGroupId (F&O's "" for no reference) and leaves
    dataAreaId from the company."""
    account = {"accountnumber": "A", "msdyn_company": "USMF", "msdyn_customergroupid": None}
    change = to_fo(MAPS["customers"], account)
    assert change.payload["CustomerGroupId"] == ""
    assert change.payload["dataAreaId"] == "USMF"


def test_missing_fields_are_left_alone_and_null_fields_are_cleared() -> None:
    """A field absent from the source row is not written; a null one is written as null."""
    change = to_dataverse(MAPS["company"], {"LegalEntityId": "USMF", "Name": None})
    assert change.payload == {"cdm_companycode": "USMF", "cdm_name": None}
    partial = to_dataverse(MAPS["company"], {"LegalEntityId": "USMF"})
    assert partial.payload == {"cdm_companycode": "USMF"}


def test_a_default_stands_for_a_null_not_for_an_absent_field() -> None:
    """A product's decimal precision defaults to 0 when F&O sends it empty, and is left alone when F&O does
    not send it at all (it was reset to 0)."""
    product = {"dataAreaId": "usmf", "ProductNumber": "P1", "ProductName": "n"}
    assert "quantitydecimal" not in to_dataverse(MAPS["products"], product).payload
    empty = to_dataverse(MAPS["products"], {**product, "SalesUnitDecimalPrecision": None})
    assert empty.payload["quantitydecimal"] == 0


def test_a_dataverse_null_goes_to_fo_as_what_fo_holds_for_no_value() -> None:
    """F&O holds no null and refuses one for a credit limit or a day count: they get 0, a text field "", an
    enum its element of value 0."""
    account = {"accountnumber": "A", "msdyn_company": "USMF", "creditlimit": None, "telephone1": None}
    change = to_fo(MAPS["customers"], account)
    assert (change.payload["CreditLimit"], change.payload["PrimaryContactPhone"]) == (0, "")
    terms = {"msdyn_company": "USMF", "msdyn_name": "Net30", "msdyn_days": None, "msdyn_numberofmonth": None}
    payload = to_fo(MAPS["payment_terms"], terms).payload
    assert (payload["NumberOfDays"], payload["NumberOfMonths"]) == (0, 0)
    cleared = {"accountnumber": "A", "msdyn_company": "USMF", "msdyn_onholdstatus": None}
    assert to_fo(MAPS["customers"], cleared).payload["OnHoldStatus"] == "No"  # CustVendorBlocked's value 0
    unread = {"accountnumber": "A", "msdyn_company": "USMF"}
    assert "CreditLimit" not in to_fo(MAPS["customers"], unread).payload  # a column not read is left alone


def test_an_empty_fo_text_goes_to_dataverse_as_null() -> None:
    """F&O's "" is its "no value" (it holds no null): Dataverse gets null, and 0 stays a number."""
    record = {"dataAreaId": "USMF", "CustomerAccount": "A", "PartyType": "Organization"}
    change = to_dataverse(MAPS["customers"], {**record, "PrimaryContactEmail": "", "CreditLimit": 0})
    assert (change.payload["emailaddress1"], change.payload["creditlimit"]) == (None, 0)


def test_currency_gets_exchange_rate_one_and_currency_999_stays_home() -> None:
    """A new Dataverse currency gets exchange rate 1 (dual-write's default); F&O's currency 999 stays home."""
    change = to_dataverse(MAPS["currency"], {"CurrencyCode": "EUR", "Name": "Euro", "Symbol": "€"})
    assert change.payload == {
        "isocurrencycode": "EUR",
        "currencyname": "Euro",
        "currencysymbol": "€",
        "exchangerate": 1.0,
    }
    back = to_fo(MAPS["currency"], {"isocurrencycode": "JPY", "currencyname": "Yen", "exchangerate": 0.0068})
    assert back.payload == {"CurrencyCode": "JPY", "Name": "Yen"}
    assert not passes_source_filter(MAPS["currency"], "fo", {"CurrencyCode": "999"})


def test_vendor_party_type_and_hold_travel_as_dual_write_maps_them() -> None:
    """A person vendor is msdyn_isperson true in Dataverse; its hold uses the documented option values."""
    record = {
        "dataAreaId": "USMF",
        "VendorAccountNumber": "V1",
        "VendorPartyType": "Person",
        "OnHoldStatus": "Never",
    }
    payload = to_dataverse(MAPS["vendors"], record).payload
    assert (payload["msdyn_isperson"], payload["msdyn_onholdstatus"]) == (True, 806380005)
    row = {
        "msdyn_vendoraccountnumber": "V1",
        "msdyn_company": {"cdm_companycode": "USMF"},
        "msdyn_isperson": False,
    }
    assert to_fo(MAPS["vendors"], row).payload["VendorPartyType"] == "Organization"


def test_organisation_maps_mark_the_internal_organisation_type() -> None:
    """Legal entities and operating units land in one table by party number, told apart by msdyn_type."""
    legal = to_dataverse(
        MAPS["organisation_legal_entities"],
        {"LegalEntityId": "USMF", "PartyNumber": "000001", "Name": "Contoso"},
    )
    unit = to_dataverse(
        MAPS["organisation_operating_units"],
        {"OperatingUnitNumber": "000123", "PartyNumber": "000123", "OperatingUnitType": "OMDepartment"},
    )
    assert legal.target == unit.target == "msdyn_internalorganizations"
    assert (legal.payload["msdyn_type"], unit.payload["msdyn_type"]) == (806380000, 806380001)
    assert legal.key == {"msdyn_partynumber": "000001"}
    assert legal.payload["msdyn_companycode"] == "USMF"


def test_published_hierarchy_finds_parent_and_child_by_party_number() -> None:
    """A published hierarchy row binds its type by name and parent and child organisations by party number."""
    row = {
        "HierarchyType": "Sales",
        "ChildOrganizationPartyNumber": "000123",
        "ParentOrganizationPartyNumber": "000001",
        "validFrom": "2024-01-01T00:00:00Z",
        "validTo": "2154-12-31T23:59:59Z",
    }
    body = to_dataverse(MAPS["organisation_hierarchies"], row).body()
    assert body["msdyn_childid@odata.bind"] == "/msdyn_internalorganizations(msdyn_partynumber='000123')"
    assert body["msdyn_parentid@odata.bind"] == "/msdyn_internalorganizations(msdyn_partynumber='000001')"
    assert body["msdyn_hierarchytypeid@odata.bind"] == (
        "/msdyn_internalorganizationhierarchytypes(msdyn_name='Sales')"
    )


def test_product_number_is_company_and_product_number_joined() -> None:
    """A released distinct product's Dataverse key is its company and product number concatenated."""
    record = {"dataAreaId": "usmf", "ProductNumber": "P-1", "ProductType": "Service", "CurrencyCode": "USD"}
    change = to_dataverse(MAPS["products"], record)
    assert change.key == {"productnumber": "usmfP-1"}
    assert change.payload["msdyn_productnumber"] == "P-1"
    assert change.payload["producttypecode"] == 3
    assert (
        change.body()["transactioncurrencyid@odata.bind"] == "/transactioncurrencies(isocurrencycode='USD')"
    )


def test_person_customers_become_sellable_contacts() -> None:
    """A person customer goes to contacts, keyed by company and customer account, marked sellable."""
    record = {"dataAreaId": "USMF", "CustomerAccount": "P-7", "PartyType": "Person", "PersonLastName": "Ito"}
    change = to_dataverse(MAPS["customer_contacts"], record)
    assert change.key == {"msdyn_company": "USMF", "msdyn_contactpersonid": "P-7"}
    assert change.payload["msdyn_sellable"] is True
    assert not passes_source_filter(MAPS["customers"], "fo", record)
    assert passes_source_filter(MAPS["customer_contacts"], "fo", record)


def test_vendor_contact_keys_need_the_vendor_back_in_fo() -> None:
    """A vendor contact from Dataverse is addressed in F&O by party number, type Vendor and vendor account."""
    contact = {
        "msdyn_contactpersonid": "CP-1",
        "msdyn_partynumber": "000777",
        "msdyn_company": {"cdm_companycode": "USMF"},
        "msdyn_vendorcontactid": {"msdyn_vendoraccountnumber": "V-9"},
        "msdyn_contactforvendor": True,
    }
    change = to_fo(MAPS["vendor_contacts"], contact)
    assert change.key == {
        "dataAreaId": "USMF",
        "ContactPersonPartyNumber": "000777",
        "AssociatedContactType": "Vendor",
        "AssociatedContactNumber": "V-9",
    }


def test_target_key_works_out_a_deleted_rows_key() -> None:
    """A delete's source key gives the target key where the map determines it, and an error where not."""
    assert target_key(MAPS["customers"], "fo", {"dataAreaId": "USMF", "CustomerAccount": "A"}) == {
        "msdyn_company": "USMF",
        "accountnumber": "A",
    }
    assert target_key(MAPS["customers"], "dataverse", {"msdyn_company": "USMF", "accountnumber": "A"}) == {
        "dataAreaId": "USMF",
        "CustomerAccount": "A",
    }
    assert target_key(MAPS["products"], "fo", {"dataAreaId": "usmf", "ProductNumber": "P"}) == {
        "productnumber": "usmfP"
    }
    with pytest.raises(ValueError, match="vendor_contacts"):
        target_key(
            MAPS["vendor_contacts"], "dataverse", {"msdyn_company": "USMF", "msdyn_contactpersonid": "CP-1"}
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
    assert passes_source_filter(MAPS["customer_groups"], "dataverse", {"anything": 1})


def test_natural_key_reads_expanded_and_plain_lookups() -> None:
    """The Dataverse natural key reads the company from an expanded lookup or a plain value alike."""
    customers = MAPS["customers"]
    expanded = {"accountnumber": "A", "msdyn_company": {"cdm_companycode": "USMF"}}
    plain = {"accountnumber": "A", "msdyn_company": "USMF"}
    assert natural_key(customers, "dataverse", expanded) == natural_key(customers, "dataverse", plain)


def test_map_set_lookups() -> None:
    """The map set finds maps by name, by area and by the source they read."""
    assert {m.name for m in MAPS.in_area("customer")} == {
        "payment_terms",
        "customer_groups",
        "customers",
        "customer_contacts",
    }
    assert {m.name for m in MAPS.for_source("fo", "CustomersV3")} == {"customers", "customer_contacts"}
    assert {m.name for m in MAPS.for_source("fo", "LegalEntities")} == {
        "company",
        "organisation_legal_entities",
    }
    assert MAPS.for_source("dataverse", "products") == ()
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
