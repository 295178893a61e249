"""What producers derive from the maps, and the queries they build from it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dualbus.d365 import fo_entities
from dualbus.producers.dv_lookups import LookupResolver, lookup_column, primary_id_column, select_columns
from dualbus.producers.initial_sync import keyset_filter
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import load_maps


def _table(origin: Origin, name: str):
    return next(t for t in source_tables(load_maps(), origin) if t.name == name)


def test_source_tables_follow_the_area_order() -> None:
    """Companies and currencies come before the groups and customers that look them up."""
    names = [t.name for t in source_tables(load_maps(), Origin.FO)]
    assert names.index("LegalEntities") < names.index("CustomerGroups") < names.index("CustomersV3")
    assert names.index("Currencies") < names.index("CustomersV3")


def test_areas_limit_the_tables_and_unknown_areas_are_refused() -> None:
    """Asking for one area yields only its maps; an unknown area is a configuration error."""
    tables = source_tables(load_maps(), Origin.DATAVERSE, ["customer"])
    assert {t.name for t in tables} == {"accounts", "contacts", "msdyn_customergroups", "msdyn_paymentterms"}
    with pytest.raises(ConfigError, match="nowhere"):
        source_tables(load_maps(), Origin.FO, ["nowhere"])


def test_one_way_maps_have_no_dataverse_source() -> None:
    """Products go from F&O to Dataverse only, so Dataverse has no product source."""
    assert not [t for t in source_tables(load_maps(), Origin.DATAVERSE) if t.area == "product"]
    assert [t for t in source_tables(load_maps(), Origin.FO) if t.area == "product"]


def test_dataverse_key_reads_the_company_lookup_as_its_code() -> None:
    """An account's natural key holds the company code from the resolved lookup."""
    accounts = _table(Origin.DATAVERSE, "accounts")
    row = {"accountnumber": "C-1", "msdyn_company": {"cdm_companycode": "USMF"}, "customertypecode": 3}
    assert accounts.key_of(row) == {"msdyn_company": "USMF", "accountnumber": "C-1"}
    assert accounts.company_of(accounts.key_of(row)) == "USMF"
    assert accounts.takes(row)
    assert not accounts.takes({**row, "customertypecode": 1})


def test_select_reads_lookups_by_value_column_and_filter_fields() -> None:
    """The $select list names lookups as _x_value, adds the filter column, id, version and modifier."""
    columns = select_columns(_table(Origin.DATAVERSE, "accounts"))
    assert lookup_column("accounts", "msdyn_company") == "_msdyn_company_value"
    assert lookup_column("accounts", "msdyn_company") in columns
    assert "msdyn_company" not in columns
    assert {"customertypecode", "accountid", "versionnumber", "_modifiedby_value"} <= set(columns)


@pytest.mark.parametrize(
    ("entity_set", "column"),
    [
        ("accounts", "accountid"),
        ("cdm_companies", "cdm_companyid"),
        ("transactioncurrencies", "transactioncurrencyid"),
        ("msdyn_customergroups", "msdyn_customergroupid"),
        ("msdyn_internalorganizationhierarchies", "msdyn_internalorganizationhierarchyid"),
    ],
)
def test_primary_id_column_comes_from_the_schema(entity_set: str, column: str) -> None:
    """The primary id column is the one the table's schema names."""
    assert primary_id_column(entity_set) == column


def test_a_lookup_is_read_by_its_columns_value_property() -> None:
    """A lookup whose navigation property differs from its column is read as _<column>_value."""
    assert lookup_column("products", "msdyn_CompanyId") == "_msdyn_companyid_value"


def test_keyset_filter_orders_composite_keys() -> None:
    """Rows after (a, b) are those with a greater first part, or an equal first part and a greater second."""
    entity = fo_entities()["OrganizationHierarchyPublished"]
    assert keyset_filter(entity, ["HierarchyType", "validFrom"], ["T'1", "2024-01-01T00:00:00Z"]) == (
        "(HierarchyType gt 'T''1') or (HierarchyType eq 'T''1' and validFrom gt 2024-01-01T00:00:00Z)"
    )


def test_keyset_filter_names_the_enum_members_after_the_last_one() -> None:
    """F&O compares enums with eq and ne only: "after Security" is each later member, in typed literals."""
    entity = fo_entities()["OrganizationHierarchyPurposes"]
    members = entity.enums["HierarchyPurpose"]
    later = members[members.index("Security") + 1 :]
    expected = " or ".join(
        f"HierarchyPurpose eq Microsoft.Dynamics.DataEntities.HierarchyPurpose'{m}'" for m in later
    )
    assert keyset_filter(entity, ["HierarchyPurpose", "HierarchyType"], ["Security", "T"]) == (
        f"(({expected})) or (HierarchyPurpose eq Microsoft.Dynamics.DataEntities.HierarchyPurpose'Security'"
        " and HierarchyType gt 'T')"
    )
    assert " gt Microsoft" not in str(keyset_filter(entity, ["HierarchyPurpose"], [members[0]]))
    # After the last member nothing can come.
    assert keyset_filter(entity, ["HierarchyPurpose"], [members[-1]]) is None


def test_filter_fields_travel_with_the_event() -> None:
    """The source filter's fields are carried, so a consumer can re-check the filter from the event."""
    assert "PartyType" in _table(Origin.FO, "CustomersV3").carried_fields
    assert "customertypecode" in _table(Origin.DATAVERSE, "accounts").carried_fields


def test_a_lookup_into_another_areas_table_reads_only_its_plain_key_columns() -> None:
    """A producer running one area still leaves a target key's lookup column (its company) unread."""
    vendors = load_maps()["vendors"]
    resolver = LookupResolver(None, [vendors])  # type: ignore[arg-type] - no request is made here
    terms = next(lk for lk in vendors.lookups if lk.target_table == "msdyn_paymentterms")
    assert resolver._plain_key_columns(terms) == ["msdyn_name"]


class _VendorAccounts:
    """Answers a vendor's account number, which the test edits as a Dataverse user would."""

    def __init__(self) -> None:
        self.number = "V-1"

    async def request(self, _method: str, _path: str, **_options: object) -> httpx.Response:
        return httpx.Response(200, json={"msdyn_vendoraccountnumber": self.number})


@pytest.mark.asyncio
async def test_a_looked_up_row_that_changed_is_read_again() -> None:
    """A vendor's account number edited in Dataverse: contacts that look it up named it by its old number
    for the producer's whole life. Forgotten when the vendor's own change is read, it is read again."""
    contacts = load_maps()["vendor_contacts"]
    vendor = next(lk for lk in contacts.lookups if lk.target_table == "msdyn_vendors")
    api = _VendorAccounts()
    resolver = LookupResolver(api, [contacts])  # type: ignore[arg-type]
    assert await resolver.resolve(vendor, "guid-1") == {"msdyn_vendoraccountnumber": "V-1"}
    api.number = "V-2"
    assert await resolver.resolve(vendor, "guid-1") == {"msdyn_vendoraccountnumber": "V-1"}  # cached
    resolver.forget("msdyn_vendors", "guid-1")
    assert await resolver.resolve(vendor, "guid-1") == {"msdyn_vendoraccountnumber": "V-2"}


class _HeldVendorAccounts(_VendorAccounts):
    """Answers once let go (``answer``), counting the reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def request(self, _method: str, _path: str, **_options: object) -> httpx.Response:
        self.reads += 1
        self.asked.set()
        number = self.number  # read as the request arrives; the answer comes later
        await self.answer.wait()
        return httpx.Response(200, json={"msdyn_vendoraccountnumber": number})


@pytest.mark.asyncio
async def test_lookups_of_one_row_at_the_same_moment_share_one_read() -> None:
    """Rows of one page expanded side by side that look up one vendor send one read, not one each."""
    contacts = load_maps()["vendor_contacts"]
    vendor = next(lk for lk in contacts.lookups if lk.target_table == "msdyn_vendors")
    api = _HeldVendorAccounts()
    resolver = LookupResolver(api, [contacts])  # type: ignore[arg-type]
    lookups = [asyncio.ensure_future(resolver.resolve(vendor, "guid-1")) for _ in range(3)]
    await asyncio.wait_for(api.asked.wait(), 5)  # the read has reached Dataverse; every lookup waits
    api.answer.set()
    assert await asyncio.gather(*lookups) == [{"msdyn_vendoraccountnumber": "V-1"}] * 3
    assert api.reads == 1


@pytest.mark.asyncio
async def test_a_read_under_way_when_its_row_changed_is_not_kept() -> None:
    """The vendor's change is read while a read of its number is under way: that read may hold the old
    number, so it answers the lookups that waited for it, and the next lookup reads the row again."""
    contacts = load_maps()["vendor_contacts"]
    vendor = next(lk for lk in contacts.lookups if lk.target_table == "msdyn_vendors")
    api = _HeldVendorAccounts()
    resolver = LookupResolver(api, [contacts])  # type: ignore[arg-type]
    under_way = asyncio.ensure_future(resolver.resolve(vendor, "guid-1"))
    await asyncio.wait_for(api.asked.wait(), 5)  # the read has reached Dataverse
    api.number = "V-2"
    resolver.forget("msdyn_vendors", "guid-1")
    api.answer.set()
    assert await under_way == {"msdyn_vendoraccountnumber": "V-1"}
    assert await resolver.resolve(vendor, "guid-1") == {"msdyn_vendoraccountnumber": "V-2"}
    assert api.reads == 2
