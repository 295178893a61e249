"""A vendor contact deleted on one side disappears from the other: producer, emulator, consumer and twins.

The two sides key a vendor contact differently (F&O: company, party number, type and vendor; Dataverse:
company and contact person id), so each delete carries the values that name the row on the other side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dualbus.consumers._sink import ApplyResult, Sink
from dualbus.producers.clock import VersionClock
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_reader import FoReader
from dualbus.producers.runner import ProducerContext, open_context
from dualbus.producers.settings import ProducerOptions
from dualbus.sandbox.fo import Change, data_event_payload
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.topology import Direction

from .conftest import CLIENTS, Pipeline
from .helpers import api_sink, changes_of, seed, seed_fo
from .samples import COMPANY, SEEDS, VENDOR, seed_events

pytestmark = pytest.mark.integration

ENTITY = "CDSContactPersonsV2"
FO_CONTACT = {
    "dataAreaId": COMPANY,
    "ContactPersonPartyNumber": "CPN-1",
    "AssociatedContactType": "Vendor",
    "AssociatedContactNumber": VENDOR,
    "ContactPersonId": "CP-FO",
    "FirstName": "Ann",
}


@asynccontextmanager
async def producer(pipeline: Pipeline, origin: Origin, state: Path) -> AsyncIterator[ProducerContext]:
    """One origin's producer context on the pipeline's bus and twins, every area."""
    settings = pipeline.settings().model_copy(update={"state_dir": state})
    # Every area: the Dataverse lookup resolver learns from the maps read which key columns are lookups.
    async with open_context(origin, settings, ProducerOptions()) as context:
        yield context


@asynccontextmanager
async def contact_from_fo(
    pipeline: Pipeline, state: Path
) -> AsyncIterator[tuple[FoEventHandler, list[Change]]]:
    """FO_CONTACT created in F&O, published from its data event and applied to Dataverse; the F&O event
    handler, and the twin's changes from then on (each one a data event to hand it)."""
    changes: list[Change] = []
    store = pipeline.fo.twin.store
    store.subscribe(changes.append)
    async with producer(pipeline, Origin.FO, state) as ctx:
        handler = FoEventHandler(
            FoReader(ctx.api), ctx.tables, ctx.publisher, ctx.store, VersionClock(ctx.store)
        )
        store.insert(ENTITY, FO_CONTACT, modified_by="workload")
        await handler.handle([parse_data_event(data_event_payload(changes.pop()))])
        await apply(pipeline, Direction.TO_DATAVERSE)
        yield handler, changes


def fo_contacts(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [r for r in pipeline.fo.twin.store.rows(ENTITY) if r["ContactPersonPartyNumber"] == "CPN-1"]


def dataverse_contacts(pipeline: Pipeline, contact_person: str) -> list[dict[str, Any]]:
    rows = pipeline.dataverse.store.rows("contacts")
    return [r for r in rows if r.get("msdyn_contactpersonid") == contact_person]


async def apply(pipeline: Pipeline, direction: Direction) -> None:
    """Run the vendor consumer of ``direction`` until it has applied one event, without dead letters."""
    metrics = await pipeline.consume("vendor", direction, lambda m: m.counts["applied"] >= 1)
    assert metrics.counts["applied"] == 1
    assert pipeline.dead_letters("vendor", direction) == []


@pytest.mark.asyncio
async def test_a_vendor_contact_deleted_in_fo_disappears_from_dataverse(pipeline: Pipeline, tmp_path: Path):
    """The F&O delete carries ContactPersonId (from the event's PreImage), Dataverse's key for the contact."""
    await seed(pipeline, Direction.TO_DATAVERSE)
    await asyncio.to_thread(seed_fo, pipeline)
    async with contact_from_fo(pipeline, tmp_path) as (handler, changes):
        assert len(dataverse_contacts(pipeline, "CP-FO")) == 1
        key = tuple(fo_contacts(pipeline)[0][name] for name in pipeline.maps["vendor_contacts"].fo_key)
        pipeline.fo.twin.store.delete(ENTITY, key, modified_by="workload")
        assert await handler.handle([parse_data_event(data_event_payload(changes.pop()))]) == 1
    await apply(pipeline, Direction.TO_DATAVERSE)
    assert dataverse_contacts(pipeline, "CP-FO") == []


def _maker(pipeline: Pipeline) -> httpx.Client:
    """A Dataverse client of another application (not dualbus), whose changes the producer publishes."""
    twin = pipeline.dataverse
    token = twin.issuer.issue(client_id="workload", client_secret=CLIENTS["workload"], scope=twin.scope)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    return httpx.Client(base_url=twin.api_url, headers=headers, timeout=30)


def _vendor_bind(pipeline: Pipeline, account: str) -> str:
    vendors = pipeline.dataverse.store.rows("msdyn_vendors")
    vendor = next(r for r in vendors if r["msdyn_vendoraccountnumber"] == account)
    return f"msdyn_vendors({vendor['msdyn_vendorid']})"


async def _second_vendor(pipeline: Pipeline, account: str) -> None:
    """Another vendor on both sides, as a synced vendor stands (Dataverse's written by dualbus)."""
    record = {**dict(SEEDS)["vendors"], "VendorAccountNumber": account}
    with pipeline.fo.client("workload") as client:
        made = await asyncio.to_thread(
            client.post, "/data/VendorsV2", json=record, params={"cross-company": "true"}
        )
        assert made.status_code == 201, made.text
    [vendor] = [e for e in seed_events(pipeline.maps) if e.entity == "VendorsV2"]
    moved = vendor.model_copy(update={"key": {**vendor.key, "VendorAccountNumber": account}, "data": record})
    async with httpx.AsyncClient() as http:
        sink = api_sink(pipeline, Direction.TO_DATAVERSE, http)
        for change in changes_of(pipeline, moved, Direction.TO_DATAVERSE):
            await sink.apply(change)
        await sink.aclose()


def _dataverse_contact(pipeline: Pipeline) -> dict[str, object]:
    return {
        "msdyn_contactpersonid": "CP-DV",
        "msdyn_partynumber": "CPN-1",
        "firstname": "Bo",
        "msdyn_contactforvendor": True,
        "msdyn_sellable": False,
        "msdyn_company@odata.bind": f"cdm_companies(cdm_companycode='{COMPANY}')",
        "msdyn_vendorcontactid@odata.bind": _vendor_bind(pipeline, VENDOR),
    }


@pytest.mark.asyncio
async def test_a_vendor_contact_deleted_in_dataverse_disappears_from_fo(pipeline: Pipeline, tmp_path: Path):
    """The Dataverse delete (an id only) carries party number and vendor from the producer's row index."""
    await seed(pipeline, Direction.TO_DATAVERSE)
    await asyncio.to_thread(seed_fo, pipeline)
    async with producer(pipeline, Origin.DATAVERSE, tmp_path) as ctx:
        source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
        # The seeds were written by dualbus itself: echoes, nothing to publish.
        assert await source.poll_once() == 0
        with _maker(pipeline) as maker:
            created = maker.post("contacts", json=_dataverse_contact(pipeline))
            assert created.is_success, created.text
            assert await source.poll_once() == 1
            await apply(pipeline, Direction.TO_FO)
            assert [r["AssociatedContactNumber"] for r in fo_contacts(pipeline)] == [VENDOR]
            assert maker.delete(created.headers["OData-EntityId"]).is_success
        deleted = await source.poll_once()
    assert deleted == 1
    await apply(pipeline, Direction.TO_FO)
    assert fo_contacts(pipeline) == []


@pytest.mark.asyncio
async def test_a_contact_moved_to_another_vendor_in_dataverse_moves_in_fo(pipeline: Pipeline, tmp_path: Path):
    """Dataverse keys the contact by company and contact person id, which the move leaves alone; F&O keys it
    by its vendor too. The contact under the old vendor goes from F&O, and one under the new vendor comes:
    F&O held both before."""
    await seed(pipeline, Direction.TO_DATAVERSE)
    await asyncio.to_thread(seed_fo, pipeline)
    await _second_vendor(pipeline, "V-OTHER")
    async with producer(pipeline, Origin.DATAVERSE, tmp_path) as ctx:
        source = DataverseSource(ctx.api, ctx.tables, ctx.publisher, ctx.store, ctx.echo)
        assert await source.poll_once() == 0  # dualbus's own writes
        with _maker(pipeline) as maker:
            created = maker.post("contacts", json=_dataverse_contact(pipeline))
            assert created.is_success, created.text
            assert await source.poll_once() == 1
            await apply(pipeline, Direction.TO_FO)
            assert [r["AssociatedContactNumber"] for r in fo_contacts(pipeline)] == [VENDOR]
            move = {"msdyn_vendorcontactid@odata.bind": _vendor_bind(pipeline, "V-OTHER")}
            assert maker.patch(created.headers["OData-EntityId"], json=move).is_success
        assert await source.poll_once() == 2  # the contact under its old vendor goes, under the new comes
    metrics = await pipeline.consume("vendor", Direction.TO_FO, lambda m: m.counts["applied"] >= 2)
    assert metrics.counts["applied"] == 2
    assert pipeline.dead_letters("vendor", Direction.TO_FO) == []
    assert [r["AssociatedContactNumber"] for r in fo_contacts(pipeline)] == ["V-OTHER"]


@pytest.mark.asyncio
async def test_the_delete_of_a_contact_under_its_old_vendor_leaves_it_under_the_new(
    pipeline: Pipeline, tmp_path: Path
):
    """F&O keys the contact by its vendor, Dataverse does not: after the contact is under another vendor,
    the delete of it under the old one (published later, with a newer version: F&O's scan finds that key
    gone only then) names the same Dataverse row, which stays, as it is another record now."""
    await seed(pipeline, Direction.TO_DATAVERSE)
    await asyncio.to_thread(seed_fo, pipeline)
    await _second_vendor(pipeline, "V-OTHER")
    store = pipeline.fo.twin.store
    async with contact_from_fo(pipeline, tmp_path) as (handler, changes):
        old_key = tuple(fo_contacts(pipeline)[0][name] for name in pipeline.maps["vendor_contacts"].fo_key)
        store.delete(ENTITY, old_key, modified_by="workload")
        gone = changes.pop()
        store.insert(ENTITY, {**FO_CONTACT, "AssociatedContactNumber": "V-OTHER"}, modified_by="workload")
        assert await handler.handle([parse_data_event(data_event_payload(changes.pop()))]) == 1
        await apply(pipeline, Direction.TO_DATAVERSE)
        [moved] = dataverse_contacts(pipeline, "CP-FO")
        assert moved["_msdyn_vendorcontactid_value"] == _vendor_bind(pipeline, "V-OTHER")[14:-1]
        assert await handler.handle([parse_data_event(data_event_payload(gone))]) == 1
    metrics = await pipeline.consume("vendor", Direction.TO_DATAVERSE, lambda m: m.counts["unchanged"] >= 1)
    assert (metrics.counts["unchanged"], metrics.counts["applied"]) == (1, 0)
    assert len(dataverse_contacts(pipeline, "CP-FO")) == 1


def _contact_event(pipeline: Pipeline, operation: Operation, version: int) -> Envelope:
    key_names = pipeline.maps["vendor_contacts"].fo_key
    key = {name: FO_CONTACT[name] for name in key_names}
    data = {"ContactPersonId": FO_CONTACT["ContactPersonId"]}
    if operation is not Operation.DELETE:
        data = {name: value for name, value in FO_CONTACT.items() if name not in key_names}
    return Envelope.for_change(
        origin=Origin.FO,
        area="vendor",
        entity=ENTITY,
        key=key,
        operation=operation,
        source_version=version,
        time=datetime.now(UTC),
        data=data,
    )


async def _apply(sink: Sink, pipeline: Pipeline, event: Envelope) -> list[ApplyResult]:
    return [await sink.apply(change) for change in changes_of(pipeline, event, Direction.TO_DATAVERSE)]


@pytest.mark.asyncio
async def test_a_delete_finds_its_contact_under_a_vendor_made_again(pipeline: Pipeline):
    """The vendor was deleted and made again in Dataverse (a new id), and the contact bound to the new one:
    the sink, which knew the old id, reads the vendor's again rather than take the contact for another
    vendor's and leave it."""
    await seed(pipeline, Direction.TO_DATAVERSE)
    async with httpx.AsyncClient() as http:
        sink = api_sink(pipeline, Direction.TO_DATAVERSE, http)
        assert await _apply(sink, pipeline, _contact_event(pipeline, Operation.UPDATE, 2)) == [
            ApplyResult.APPLIED
        ]
        with _maker(pipeline) as maker:
            assert maker.delete(_vendor_bind(pipeline, VENDOR)).is_success
            [vendor] = [e for e in seed_events(pipeline.maps) if e.entity == "VendorsV2"]
            again = api_sink(pipeline, Direction.TO_DATAVERSE, http)  # a cache of its own
            assert await _apply(again, pipeline, vendor) == [ApplyResult.APPLIED]
            await again.aclose()
            [contact] = dataverse_contacts(pipeline, "CP-FO")
            rebind = {"msdyn_vendorcontactid@odata.bind": _vendor_bind(pipeline, VENDOR)}
            assert maker.patch(f"contacts({contact['contactid']})", json=rebind).is_success
        assert await _apply(sink, pipeline, _contact_event(pipeline, Operation.DELETE, 3)) == [
            ApplyResult.APPLIED
        ]
        await sink.aclose()
    assert dataverse_contacts(pipeline, "CP-FO") == []
