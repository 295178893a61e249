"""Deletes carry the values that name the row on the other side: from a PreImage, the store, the row index."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.events import EchoFilter
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_poller import FoScanner
from dualbus.producers.fo_rows import FoBatch, key_text
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import SourceTable, source_tables
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import default_topology
from tests.unit.producers.contexts import data_event
from tests.unit.producers.fakes import FakeFoReader, RecordingClient, sent_envelopes

ROW_ID = "00004c03-0000-0000-6d28-014105000077"
FO_KEY = {
    "dataAreaId": "usmf",
    "ContactPersonPartyNumber": "000001",
    "AssociatedContactType": "Vendor",
    "AssociatedContactNumber": "V-1",
}
FO_CONTACT = {**FO_KEY, "ContactPersonId": "CP-1", "FirstName": "Ann", "DualbusSourceVersion": None}
ENTITY = "CDSContactPersonsV2"


@dataclass
class Fo:
    client: RecordingClient
    reader: FakeFoReader
    store: CheckpointStore
    handler: FoEventHandler
    scanner: FoScanner

    async def send(self, payload: dict[str, object]) -> int:
        return await self.handler.handle([parse_data_event(payload)])

    def deletes(self) -> list[Envelope]:
        sent = sent_envelopes(self.client, "dualbus.vendor")
        return [e for e in sent if e.operation is Operation.DELETE]


@pytest.fixture
def fo(tmp_path: Path) -> Iterator[Fo]:
    client = RecordingClient(max_bytes=256 * 1024)
    store = CheckpointStore(tmp_path / "producer-fo.sqlite3")
    reader = FakeFoReader()
    tables = source_tables(load_maps(), Origin.FO, ["vendor"])
    publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
    clock = VersionClock(store)
    parts = (reader, tables, publisher, store, clock)
    handler = FoEventHandler(*parts, retry=RetryPolicy(attempts=1))  # type: ignore[arg-type]
    scanner = FoScanner(*parts, retry=RetryPolicy(attempts=1))  # type: ignore[arg-type]
    yield Fo(client, reader, store, handler, scanner)
    store.close()


@pytest.mark.asyncio
async def test_an_fo_delete_event_carries_the_values_of_its_pre_image(fo: Fo) -> None:
    """A vendor contact's delete carries its ContactPersonId from the PreImage, beside the F&O key."""
    event = data_event("OnExternalDeleted", ENTITY, ROW_ID, {}, {**FO_CONTACT, "ContactPersonId": "CP-9"})
    assert await fo.send(event) == 1
    (deleted,) = fo.deletes()
    assert (deleted.key, deleted.data) == (FO_KEY, {"ContactPersonId": "CP-9"})


@pytest.mark.asyncio
async def test_a_target_only_fo_delete_carries_the_values_stored_when_the_row_was_published(fo: Fo) -> None:
    """Without a PreImage the values come from what the producer stored with the row's last publish."""
    fo.reader.put(ENTITY, FO_CONTACT)
    await fo.send(data_event("OnExternalCreated", ENTITY, ROW_ID, FO_CONTACT))
    fo.reader.remove(ENTITY, FO_KEY)
    assert await fo.send(data_event("OnExternalDeleted", ENTITY, ROW_ID, {})) == 1
    (deleted,) = fo.deletes()
    assert (deleted.key, deleted.data) == (FO_KEY, {"ContactPersonId": "CP-1"})


@pytest.mark.asyncio
async def test_an_empty_value_in_a_pre_image_names_nothing_and_the_stored_value_is_carried(fo: Fo) -> None:
    """F&O's "" is its "no value" (it holds no null): a PreImage's empty ContactPersonId does not override
    the value stored when the row was last published."""
    fo.reader.put(ENTITY, FO_CONTACT)
    await fo.send(data_event("OnExternalCreated", ENTITY, ROW_ID, FO_CONTACT))
    fo.reader.remove(ENTITY, FO_KEY)
    blank = {**FO_CONTACT, "ContactPersonId": ""}
    assert await fo.send(data_event("OnExternalDeleted", ENTITY, ROW_ID, {}, blank)) == 1
    (deleted,) = fo.deletes()
    assert (deleted.key, deleted.data) == (FO_KEY, {"ContactPersonId": "CP-1"})


@pytest.mark.asyncio
async def test_a_scan_delete_carries_the_values_stored_with_the_digest(fo: Fo) -> None:
    """A row the scan finds gone is deleted with the values stored when it was last published."""
    fo.reader.put(ENTITY, FO_CONTACT)
    await fo.scanner.scan_once()
    fo.reader.remove(ENTITY, FO_KEY)
    assert await fo.scanner.scan_once() == 1
    (deleted,) = fo.deletes()
    assert (deleted.key, deleted.data) == (FO_KEY, {"ContactPersonId": "CP-1"})


@pytest.mark.asyncio
async def test_a_key_stored_without_values_is_still_deleted_by_its_key(fo: Fo) -> None:
    """A digest from before deletes carried values publishes a key-only delete, never drops it."""
    fo.reader.put(ENTITY, FO_CONTACT)
    await fo.scanner.scan_once()
    _forget_delete_values(fo.store)
    fo.reader.remove(ENTITY, FO_KEY)
    assert await fo.scanner.scan_once() == 1
    (deleted,) = fo.deletes()
    assert (deleted.key, deleted.data) == (FO_KEY, {})


@pytest.mark.asyncio
async def test_a_scan_gives_keys_stored_without_values_the_values_of_their_rows(fo: Fo) -> None:
    """An unchanged row the scan sees again gets its delete values stored, though nothing is published."""
    fo.reader.put(ENTITY, FO_CONTACT)
    await fo.scanner.scan_once()
    _forget_delete_values(fo.store)
    assert await fo.scanner.scan_once() == 0
    text = key_text(FO_KEY)
    assert fo.store.delete_data("vendor_contacts", [text]) == {text: {"ContactPersonId": "CP-1"}}


def test_one_delete_per_area_carries_what_each_map_of_the_entity_needs(tmp_path: Path) -> None:
    """Two maps of one area reading the entity share one delete, which carries both maps' values."""
    (contacts,) = (t for t in source_tables(load_maps(), Origin.FO, ["vendor"]) if t.name == ENTITY)
    renamed = tuple(
        f.model_copy(update={"fo": "FirstName"}) if f.fo == "ContactPersonId" else f
        for f in contacts.table_map.fields
    )
    by_name = contacts.table_map.model_copy(update={"name": "by_name", "fields": renamed})
    other = SourceTable(by_name, Origin.FO)
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        batch = FoBatch(VersionClock(store))
        batch.delete(contacts, FO_KEY, None, FO_CONTACT)
        batch.delete(other, FO_KEY, None, FO_CONTACT)
    (deleted,) = batch.outbox.envelopes
    assert deleted.data == {"ContactPersonId": "CP-1", "FirstName": "Ann"}


def _forget_delete_values(store: CheckpointStore) -> None:
    """Leave the digests as a producer did before deletes carried values."""
    store._db.execute("UPDATE digests SET delete_data = NULL")


CONTACT_ID = "5a1e0000-0000-0000-0000-000000000001"
COMPANY_ID = "c0c00000-0000-0000-0000-000000000001"
VENDOR_ID = "7e7d0000-0000-0000-0000-000000000001"
DV_CONTACT = {
    "contactid": CONTACT_ID,
    "msdyn_contactpersonid": "CP-1",
    "msdyn_partynumber": "000001",
    "firstname": "Bo",
    "msdyn_contactforvendor": True,
    "msdyn_sellable": False,
    "_msdyn_company_value": COMPANY_ID,
    "_msdyn_vendorcontactid_value": VENDOR_ID,
    "versionnumber": 41,
    "modifiedon": "2026-01-02T03:04:05Z",
    "_modifiedby_value": "maker",
}
DV_KEY = {"msdyn_company": "USMF", "msdyn_contactpersonid": "CP-1"}


class FakeDataverse:
    """Answers change tracking (contacts: a snapshot, then queued deltas; other tables: none) and lookups."""

    def __init__(self) -> None:
        self.deltas: list[list[dict[str, Any]]] = []
        self.targets = {
            f"cdm_companies({COMPANY_ID})": {"cdm_companycode": "USMF"},
            f"msdyn_vendors({VENDOR_ID})": {"msdyn_vendoraccountnumber": "V-1"},
        }

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        assert method == "GET"
        if path in self.targets:
            return httpx.Response(200, json=self.targets[path])
        link = f"https://dv.example/api/data/v9.2/{path}?$deltatoken=t1"
        if path != "contacts":
            return httpx.Response(200, json={"value": [], "@odata.deltaLink": link})
        entries = self.deltas.pop(0) if "$deltatoken" in (options.get("params") or {}) else [DV_CONTACT]
        return httpx.Response(200, json={"value": entries, "@odata.deltaLink": link})


def _dataverse_source(tmp_path: Path) -> tuple[DataverseSource, RecordingClient, CheckpointStore]:
    client = RecordingClient(max_bytes=256 * 1024)
    store = CheckpointStore(tmp_path / "producer-dataverse.sqlite3")
    tables = source_tables(load_maps(), Origin.DATAVERSE, ["vendor"])
    publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
    source = DataverseSource(FakeDataverse(), tables, publisher, store, EchoFilter.of())  # type: ignore[arg-type]
    return source, client, store


def _deleted_entity(row_id: str) -> dict[str, Any]:
    context = "https://dv.example/api/data/v9.2/$metadata#contacts/$deletedEntity"
    return {"@odata.context": context, "id": row_id}


@pytest.mark.asyncio
async def test_a_dataverse_delete_carries_the_values_its_row_index_kept(tmp_path: Path) -> None:
    """Change tracking names a deleted contact by id: its party number and vendor come from the index."""
    source, client, store = _dataverse_source(tmp_path)
    with store:
        await source.poll_once()
        source._api.deltas.append([_deleted_entity(CONTACT_ID)])  # type: ignore[attr-defined]
        assert await source.poll_once() == 1
    created, deleted = sent_envelopes(client, "dualbus.vendor")
    assert created.data["msdyn_vendorcontactid"] == {"msdyn_vendoraccountnumber": "V-1"}
    assert (deleted.operation, deleted.key, deleted.source_version) == (Operation.DELETE, DV_KEY, 42)
    expected = {"msdyn_partynumber": "000001", "msdyn_vendorcontactid": {"msdyn_vendoraccountnumber": "V-1"}}
    assert deleted.data == expected


@pytest.mark.asyncio
async def test_a_dataverse_index_entry_without_values_deletes_by_key_only(tmp_path: Path) -> None:
    """An id indexed before deletes carried values is still deleted, by its key alone."""
    source, client, store = _dataverse_source(tmp_path)
    with store:
        store.put_many(
            {f"dataverse.delta.{name}": "t0" for name in ("vendor_groups", "vendors", "vendor_contacts")},
            index=[("vendor_contacts", CONTACT_ID, {"key": DV_KEY, "version": 41})],
        )
        source._api.deltas.append([_deleted_entity(CONTACT_ID)])  # type: ignore[attr-defined]
        assert await source.poll_once() == 1
    (deleted,) = sent_envelopes(client, "dualbus.vendor")
    assert (deleted.operation, deleted.key, deleted.data) == (Operation.DELETE, DV_KEY, {})


@pytest.mark.asyncio
async def test_a_dataverse_row_that_left_its_map_is_deleted_on_the_other_side(tmp_path: Path) -> None:
    """The contact is no vendor contact any more (its filter column changed): F&O's vendor contact goes,
    as the F&O producer deletes a row that left a map; nothing was published and it stayed."""
    source, client, store = _dataverse_source(tmp_path)
    with store:
        await source.poll_once()
        left = {**DV_CONTACT, "msdyn_contactforvendor": False, "versionnumber": 43}
        source._api.deltas.append([left])  # type: ignore[attr-defined]
        assert await source.poll_once() == 1
    _created, deleted = sent_envelopes(client, "dualbus.vendor")
    assert (deleted.operation, deleted.key, deleted.source_version) == (Operation.DELETE, DV_KEY, 42)
    assert deleted.data["msdyn_partynumber"] == "000001"


@pytest.mark.asyncio
async def test_each_row_read_or_deleted_is_looked_up_afresh_afterwards(tmp_path: Path) -> None:
    """The rows that look up a changed or deleted row read it again (its key may have been edited)."""
    source, _client, store = _dataverse_source(tmp_path)
    forgotten: list[tuple[str, str]] = []
    source._resolver.forget = lambda entity_set, guid: forgotten.append((entity_set, guid))  # type: ignore[method-assign]
    with store:
        await source.poll_once()
        source._api.deltas.append([_deleted_entity(CONTACT_ID)])  # type: ignore[attr-defined]
        await source.poll_once()
    assert forgotten == [("contacts", CONTACT_ID), ("contacts", CONTACT_ID)]
