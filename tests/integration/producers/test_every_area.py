"""Every area's create, update and delete reach its topic, from each source that syncs it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from producers.dataverse import DataverseSource
from producers.events import EchoFilter
from producers.fo_events import FoEventHandler
from producers.fo_reader import FoReader
from producers.runner import open_context
from producers.settings import ProducerOptions
from sandbox.dataverse import RunningDataverse
from sandbox.fo import FoHandle
from sandbox.fo.events import data_event_payload
from sandbox.fo.store import Change
from shared.envelope import Envelope, Operation, Origin
from shared.topology import default_topology
from tests.integration.producers.support import DV_CLIENTS, OWN_USERS, Emulator, drain_tap, settings_for

pytestmark = pytest.mark.integration

COMPANY = "cdm_companies(cdm_companycode='USMF')"
# F&O entity -> (a row, the field an update changes); keys are the entity's own.
FO_ROWS: dict[str, tuple[dict[str, object], str]] = {
    "LegalEntities": ({"LegalEntityId": "ZZ01", "Name": "Zed"}, "Name"),
    "Currencies": ({"CurrencyCode": "ZZD", "Name": "Zed dollar", "Symbol": "Z"}, "Name"),
    "OperatingUnits": (
        {"OperatingUnitNumber": "OU-1", "Name": "Unit", "OperatingUnitType": "Department"},
        "Name",
    ),
    "OrganizationHierarchyTypes": ({"Name": "Sales"}, "Description"),
    "OrganizationHierarchyPurposes": (
        {"HierarchyType": "Sales", "HierarchyPurpose": "Security", "IsDefault": 1},
        "IsDefault",
    ),
    "OrganizationHierarchiesPublished": (
        {
            "HierarchyType": "Sales",
            "ChildOrganizationPartyNumber": "P-1",
            "ParentOrganizationPartyNumber": "P-0",
        },
        "ParentOrganizationPartyNumber",
    ),
    "CustomerGroups": (
        {"dataAreaId": "usmf", "CustomerGroupId": "10", "Description": "Retail"},
        "Description",
    ),
    "CustomersV3": (
        {
            "dataAreaId": "usmf",
            "CustomerAccount": "C-1",
            "OrganizationName": "Fabrikam",
            "PartyType": "Organization",
        },
        "OrganizationName",
    ),
    "VendorGroups": ({"dataAreaId": "usmf", "VendorGroupId": "V1", "Description": "Parts"}, "Description"),
    "VendorsV2": (
        {
            "dataAreaId": "usmf",
            "VendorAccountNumber": "V-1",
            "VendorOrganizationName": "Tailspin",
            "VendorPartyType": "Organization",
        },
        "VendorOrganizationName",
    ),
    "ReleasedDistinctProductsV2": (
        {"dataAreaId": "usmf", "ItemNumber": "I-1", "ProductName": "Widget", "ProductType": "Item"},
        "ProductName",
    ),
}


def _lifecycles(events: list[Envelope]) -> dict[tuple[str, str], list[Operation]]:
    by_entity: dict[tuple[str, str], list[Operation]] = defaultdict(list)
    for envelope in events:
        by_entity[(envelope.area, envelope.entity)].append(envelope.operation)
    return by_entity


@pytest.mark.asyncio
async def test_fo_data_events_of_every_area(emulator: Emulator, fo: FoHandle, tmp_path: Path) -> None:
    """A create, update and delete of each F&O entity is published to every area whose map reads it."""
    collected: list[Change] = []
    fo.twin.store.subscribe(collected.append)
    for entity, (row, field) in FO_ROWS.items():
        fo.twin.store.insert(entity, row, modified_by="workload")
        keys = next(iter(c.keys for c in collected if c.entity == entity))
        key = tuple(keys.values())
        fo.twin.store.update(
            entity, key, {field: "changed" if field != "IsDefault" else 0}, modified_by="workload"
        )
        fo.twin.store.delete(entity, key, modified_by="workload")
    settings = settings_for(emulator, tmp_path, fo=fo)
    async with open_context(Origin.FO, settings, ProducerOptions(own_users=OWN_USERS)) as ctx:
        handler = FoEventHandler(FoReader(ctx.api), ctx.tables, ctx.publisher, EchoFilter.of(*OWN_USERS))
        published = await handler.handle([data_event_payload(change) for change in collected])
        expected = {(t.area, t.name) for t in ctx.tables}
    assert published == 3 * len(expected)
    events = drain_tap(emulator.connection_string, expect=published)
    lifecycles = _lifecycles(events)
    assert set(lifecycles) == expected
    for operations in lifecycles.values():
        assert operations == [Operation.CREATE, Operation.UPDATE, Operation.DELETE]


def _maker(twin: RunningDataverse) -> httpx.Client:
    form = {
        "grant_type": "client_credentials",
        "client_id": "maker",
        "client_secret": DV_CLIENTS["maker"],
        "scope": twin.scope,
    }
    token = httpx.post(twin.token_url, data=form).json()["access_token"]
    return httpx.Client(base_url=twin.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


# Dataverse table -> (a row, the column an update changes), created after company USMF exists.
DV_ROWS: dict[str, tuple[dict[str, object], str]] = {
    "transactioncurrencies": (
        {"isocurrencycode": "ZZD", "currencyname": "Zed dollar", "exchangerate": 1},
        "currencyname",
    ),
    "msdyn_customergroups": (
        {"msdyn_groupid": "10", "msdyn_description": "Retail", "msdyn_company@odata.bind": COMPANY},
        "msdyn_description",
    ),
    "accounts": (
        {
            "accountnumber": "C-1",
            "name": "Fabrikam",
            "customertypecode": 3,
            "msdyn_company@odata.bind": COMPANY,
        },
        "name",
    ),
    "msdyn_vendorgroups": (
        {"msdyn_vendorgroup": "V1", "msdyn_description": "Parts", "msdyn_company@odata.bind": COMPANY},
        "msdyn_description",
    ),
    "msdyn_vendors": (
        {
            "msdyn_vendoraccountnumber": "V-1",
            "msdyn_vendorname": "Tailspin",
            "msdyn_company@odata.bind": COMPANY,
        },
        "msdyn_vendorname",
    ),
}


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
            urls = {}
            for table, (row, _) in DV_ROWS.items():
                created = maker.post(table, json=row)
                assert created.is_success, created.text
                urls[table] = created.headers["OData-EntityId"]
            await source.poll_once()
            for table, (_, column) in DV_ROWS.items():
                assert maker.patch(urls[table], json={column: "changed"}).is_success
            await source.poll_once()
            assert maker.patch(company.headers["OData-EntityId"], json={"cdm_name": "Contoso Ltd"}).is_success
            await source.poll_once()
            for table in reversed(DV_ROWS):
                assert maker.delete(urls[table]).is_success
            assert maker.delete(company.headers["OData-EntityId"]).is_success
            await source.poll_once()
            expected = {(t.area, t.name) for t in ctx.tables}
    events = drain_tap(emulator.connection_string, expect=3 * len(expected))
    lifecycles = _lifecycles(events)
    assert set(lifecycles) == expected
    for operations in lifecycles.values():
        assert operations == [Operation.CREATE, Operation.UPDATE, Operation.DELETE]
    assert {t.area for t in default_topology().topics if (t.area, "")} >= {a for a, _ in expected}
