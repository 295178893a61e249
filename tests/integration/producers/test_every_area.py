"""Every area's create, update and delete reach its topic, from each source that syncs it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from dualbus.d365 import fo_entities
from dualbus.producers.clock import VersionClock
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_reader import FoReader
from dualbus.producers.fo_rows import key_text
from dualbus.producers.runner import open_context
from dualbus.producers.settings import ProducerOptions
from dualbus.producers.tables import SourceTable
from dualbus.sandbox.dataverse import RunningDataverse
from dualbus.sandbox.fo import Change, FoHandle, data_event_payload
from dualbus.shared.envelope import Envelope, Operation, Origin
from tests.integration.producers.support import DV_CLIENTS, OWN_USERS, Emulator, drain_tap, settings_for

pytestmark = pytest.mark.integration

COMPANY = "cdm_companies(cdm_companycode='USMF')"
SALES = {"Name": "Sales"}
# F&O entity, a row, and an update of it; the rows satisfy the twin's relations once SALES exists.
FO_ROWS: list[tuple[str, dict[str, object], dict[str, object]]] = [
    ("LegalEntities", {"LegalEntityId": "ZZ01", "Name": "Zed", "PartyNumber": "P-ZZ01"}, {"Name": "Zed Ltd"}),
    ("Currencies", {"CurrencyCode": "ZZD", "Name": "Zed dollar", "Symbol": "Z"}, {"Name": "Zed Dollar"}),
    (
        "OperatingUnits",
        {
            "OperatingUnitNumber": "OU-1",
            "Name": "Unit",
            "OperatingUnitType": "OMDepartment",
            "PartyNumber": "P-1",
        },
        {"Name": "Unit one"},
    ),
    # Its map carries the key only: an update of another field publishes nothing.
    ("OrganizationHierarchyTypes", {"Name": "Zed"}, {"RelationshipTypeID": "Other"}),
    (
        "OrganizationHierarchyPurposes",
        {"HierarchyType": "Sales", "HierarchyPurpose": "Security", "Immutable": "No"},
        {"Immutable": "Yes"},
    ),
    (
        "OrganizationHierarchyPublished",
        {
            "HierarchyType": "Sales",
            "ChildOrganizationName": "Child",
            "ChildOrganizationPartyNumber": "P-1",
            "ParentOrganizationPartyNumber": "P-0",
            "validFrom": "2026-01-01T00:00:00Z",
            "validTo": "2154-12-31T23:59:59Z",
        },
        {"ParentOrganizationPartyNumber": "P-2"},
    ),
    (
        "PaymentTerms",
        {"dataAreaId": "usmf", "Name": "Net30", "Description": "Net 30"},
        {"Description": "30 days"},
    ),
    (
        "CustomerGroups",
        {"dataAreaId": "usmf", "CustomerGroupId": "10", "Description": "Retail"},
        {"Description": "Retail B2C"},
    ),
    (
        "CustomersV3",
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "C-1",
            "OrganizationName": "Fabrikam",
            "PartyType": "Organization",
        },
        {"OrganizationName": "Fabrikam Ltd"},
    ),
    (
        "CustomersV3",
        {"dataAreaId": "usmf", "CustomerAccount": "C-2", "PersonFirstName": "Ada", "PartyType": "Person"},
        {"PersonFirstName": "Ada M."},
    ),
    (
        "UnitsOfMeasure",
        {"UnitSymbol": "zz", "UnitDescription": "Zed", "UnitClass": "Quantity"},
        {"UnitDescription": "Z"},
    ),
    (
        "ReleasedProductsV2",
        {"dataAreaId": "usmf", "ItemNumber": "I-1", "SalesPrice": 1.5, "ProductType": "Item"},
        {"SalesPrice": 2.5},
    ),
    (
        "CDSReleasedDistinctProducts",
        {"dataAreaId": "usmf", "ProductNumber": "P-1", "ProductName": "Widget"},
        {"ProductName": "Widget 2"},
    ),
    (
        "VendorGroups",
        {"dataAreaId": "usmf", "VendorGroupId": "V1", "Description": "Parts"},
        {"Description": "Spares"},
    ),
    (
        "VendorsV2",
        {
            "dataAreaId": "usmf",
            "VendorAccountNumber": "V-1",
            "VendorOrganizationName": "Tailspin",
            "VendorPartyType": "Organization",
        },
        {"VendorOrganizationName": "Tailspin Toys"},
    ),
    (
        "CDSContactPersonsV2",
        {
            "dataAreaId": "usmf",
            "ContactPersonPartyNumber": "CP-1",
            "AssociatedContactType": "Vendor",
            "AssociatedContactNumber": "V-1",
            "FirstName": "Ann",
        },
        {"FirstName": "Anna"},
    ),
]
Lifecycles = dict[tuple[str, str, str], list[Operation]]


def _lifecycles(events: list[Envelope]) -> dict[tuple[str, str], list[Operation]]:
    by_entity: dict[tuple[str, str], list[Operation]] = defaultdict(list)
    for envelope in events:
        by_entity[(envelope.area, envelope.entity)].append(envelope.operation)
    return by_entity


def _per_record(events: list[Envelope]) -> Lifecycles:
    by_record: Lifecycles = defaultdict(list)
    for envelope in sorted(events, key=lambda e: e.source_version):
        by_record[(envelope.area, envelope.entity, key_text(envelope.key))].append(envelope.operation)
    return by_record


def _expected(tables: list[SourceTable]) -> Lifecycles:
    """Per map that takes a row: create, update (when it changes a field the map carries) and delete."""
    expected: Lifecycles = {}
    for table in tables:
        if table.name == "OrganizationHierarchyTypes":
            expected[(table.area, table.name, key_text(SALES))] = [Operation.CREATE]
        for entity, row, update in FO_ROWS:
            if entity != table.name or not table.takes(row):
                continue
            changed = any(name in table.carried_fields for name in update)
            middle = [Operation.UPDATE] if changed else []
            expected[(table.area, table.name, key_text(table.key_of(row)))] = [
                Operation.CREATE,
                *middle,
                Operation.DELETE,
            ]
    return expected


@pytest.mark.asyncio
async def test_fo_data_events_of_every_area(emulator: Emulator, fo: FoHandle, tmp_path: Path) -> None:
    """Each F&O entity's create, update and delete, as the twin's data events, reach each map taking it."""
    changes: list[Change] = []
    fo.twin.store.subscribe(changes.append)
    store = fo.twin.store
    settings = settings_for(emulator, tmp_path, fo=fo)
    async with open_context(Origin.FO, settings, ProducerOptions()) as ctx:
        handler = FoEventHandler(
            FoReader(ctx.api), ctx.tables, ctx.publisher, ctx.store, VersionClock(ctx.store)
        )

        async def handle_new() -> None:
            # One change at a time, as F&O sends them: the row is read as it is right after each.
            while changes:
                await handler.handle([parse_data_event(data_event_payload(changes.pop(0)))])

        store.insert("OrganizationHierarchyTypes", SALES, modified_by="workload")
        await handle_new()
        for entity, row, update in FO_ROWS:
            created = store.insert(entity, row, modified_by="workload")
            await handle_new()
            key = tuple(created[name] for name in fo_entities()[entity].keys)
            store.update(entity, key, update, modified_by="workload")
            await handle_new()
            store.delete(entity, key, modified_by="workload")
            await handle_new()
        expected = _expected(ctx.tables)
        assert handler.unresolved == 0
    events = drain_tap(emulator.connection_string, expect=sum(len(ops) for ops in expected.values()))
    assert dict(_per_record(events)) == expected
    assert {e.base_version for e in events if e.operation is not Operation.DELETE} == {0}


def _maker(twin: RunningDataverse) -> httpx.Client:
    form = {
        "grant_type": "client_credentials",
        "client_id": "maker",
        "client_secret": DV_CLIENTS["maker"],
        "scope": twin.scope,
    }
    token = httpx.post(twin.token_url, data=form).json()["access_token"]
    return httpx.Client(base_url=twin.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


# Dataverse rows (table, a row, the column an update changes), created after company USMF exists; contacts
# twice: a customer's contact person and a vendor's, each taken by its own map.
DV_ROWS: list[tuple[str, dict[str, object], str]] = [
    (
        "transactioncurrencies",
        {"isocurrencycode": "ZZD", "currencyname": "Zed", "exchangerate": 1},
        "currencyname",
    ),
    (
        "msdyn_paymentterms",
        {"msdyn_name": "Net30", "msdyn_description": "Net 30", "msdyn_company@odata.bind": COMPANY},
        "msdyn_description",
    ),
    (
        "msdyn_customergroups",
        {"msdyn_groupid": "10", "msdyn_description": "Retail", "msdyn_company@odata.bind": COMPANY},
        "msdyn_description",
    ),
    (
        "accounts",
        {
            "accountnumber": "C-1",
            "name": "Fabrikam",
            "customertypecode": 3,
            "msdyn_company@odata.bind": COMPANY,
        },
        "name",
    ),
    (
        "contacts",
        {
            "msdyn_contactpersonid": "CP-1",
            "firstname": "Ada",
            "msdyn_sellable": True,
            "msdyn_company@odata.bind": COMPANY,
        },
        "firstname",
    ),
    (
        "msdyn_vendorgroups",
        {"msdyn_vendorgroup": "V1", "msdyn_description": "Parts", "msdyn_company@odata.bind": COMPANY},
        "msdyn_description",
    ),
    (
        "msdyn_vendors",
        {"msdyn_vendoraccountnumber": "V-1", "msdyn_name": "Tailspin", "msdyn_company@odata.bind": COMPANY},
        "msdyn_name",
    ),
    (
        "contacts",
        {
            "msdyn_contactpersonid": "VC-1",
            "firstname": "Bo",
            "msdyn_contactforvendor": True,
            "msdyn_sellable": False,
            "msdyn_company@odata.bind": COMPANY,
        },
        "firstname",
    ),
]


@pytest.mark.asyncio
async def test_dataverse_changes_of_every_area(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """A create, update and delete of each two-way Dataverse table is published to its area."""
    settings = settings_for(emulator, tmp_path, dataverse=dataverse)
    with _maker(dataverse) as maker:
        company = maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"})
        assert company.is_success
        async with open_context(Origin.DATAVERSE, settings, ProducerOptions(own_users=OWN_USERS)) as ctx:
            source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
            await source.poll_once()
            urls = []
            for table, row, _ in DV_ROWS:
                created = maker.post(table, json=row)
                assert created.is_success, created.text
                urls.append(created.headers["OData-EntityId"])
            await source.poll_once()
            for url, (_, _, column) in zip(urls, DV_ROWS, strict=True):
                assert maker.patch(url, json={column: "changed"}).is_success
            await source.poll_once()
            for url in reversed(urls):
                assert maker.delete(url).is_success
            await source.poll_once()
            # Companies go from F&O to Dataverse only: the Dataverse producer has no company source.
            expected = {(t.area, t.name) for t in ctx.tables}
    events = drain_tap(emulator.connection_string, expect=3 * len(expected))
    lifecycles = _lifecycles(events)
    assert set(lifecycles) == expected
    for operations in lifecycles.values():
        assert operations == [Operation.CREATE, Operation.UPDATE, Operation.DELETE]
