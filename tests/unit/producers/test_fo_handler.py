"""The data event handler: it reads the named row now, publishes its state per map, keeps the id index."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import TransientError
from dualbus.shared.maps import load_maps
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import default_topology
from tests.unit.producers.contexts import data_event
from tests.unit.producers.fakes import FakeFoReader, RecordingClient, sent_envelopes

ROW_ID = "00004c03-0000-0000-6d28-014105000000"
KEY = {"dataAreaId": "usmf", "CustomerAccount": "C-1"}
CUSTOMER = {
    **KEY,
    "OrganizationName": "Fabrikam",
    "PartyType": "Organization",
    "CustomerGroupId": "10",
    "SalesCurrencyCode": "USD",
    "DualbusSourceVersion": 7,
}
LEGAL_ENTITY = {"LegalEntityId": "USMF", "Name": "Contoso", "PartyNumber": "000001"}


@dataclass
class Harness:
    client: RecordingClient
    reader: FakeFoReader
    store: CheckpointStore
    handler: FoEventHandler

    async def send(self, *payloads: dict[str, object]) -> int:
        return await self.handler.handle([parse_data_event(payload) for payload in payloads])

    def sent(self, area: str | None = None) -> list[Envelope]:
        return sent_envelopes(self.client, f"dualbus.{area}" if area else None)


@pytest.fixture
def fo(tmp_path: Path):
    client = RecordingClient(max_bytes=256 * 1024)
    store = CheckpointStore(tmp_path / "producer-fo.sqlite3")
    reader = FakeFoReader()
    tables = source_tables(load_maps(), Origin.FO, ["company", "organisation", "customer"])
    publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
    handler = FoEventHandler(
        reader,  # type: ignore[arg-type]  # the in-memory rows read like FoReader
        tables,
        publisher,
        store,
        VersionClock(store),
        retry=RetryPolicy(attempts=1),
    )
    yield Harness(client, reader, store, handler)
    store.close()


def _create(values: dict[str, object] = CUSTOMER) -> dict[str, object]:
    return data_event("OnExternalCreated", "CustomersV3", ROW_ID, values)


@pytest.mark.asyncio
async def test_create_publishes_the_row_as_read_now(fo: Harness) -> None:
    """The event only names the row: what is published is its state read over OData, with its base version."""
    fo.reader.put("CustomersV3", {**CUSTOMER, "OrganizationName": "Fabrikam Ltd"})
    assert await fo.send(_create()) == 1
    (envelope,) = fo.sent("customer")
    assert (envelope.operation, envelope.entity, envelope.key) == (Operation.CREATE, "CustomersV3", KEY)
    assert envelope.data["OrganizationName"] == "Fabrikam Ltd"
    assert envelope.base_version == 7
    assert envelope.source_version > 1_700_000_000_000_000
    assert envelope.time.year == 2026  # the event's OperationCreatedOn


@pytest.mark.asyncio
async def test_base_version_is_zero_when_the_row_holds_none(fo: Harness) -> None:
    """A row dualbus never wrote (DualbusSourceVersion null) is published with base version 0."""
    fo.reader.put("CustomersV3", {**CUSTOMER, "DualbusSourceVersion": None})
    await fo.send(_create())
    assert fo.sent("customer")[0].base_version == 0


@pytest.mark.asyncio
async def test_versions_of_one_row_increase(fo: Harness) -> None:
    """Each publish of a row takes a later clock reading than the one before."""
    fo.reader.put("CustomersV3", CUSTOMER)
    await fo.send(_create())
    fo.reader.put("CustomersV3", {**CUSTOMER, "OrganizationName": "Changed"})
    await fo.send(
        data_event("OnExternalUpdated", "CustomersV3", ROW_ID, {"OrganizationName": "Changed"}, CUSTOMER)
    )
    first, second = fo.sent("customer")
    assert second.operation is Operation.UPDATE
    assert second.source_version > first.source_version


@pytest.mark.asyncio
async def test_target_only_delete_is_resolved_through_the_id_index(fo: Harness) -> None:
    """A delete carrying only the row id finds its key in the index an earlier event filled."""
    fo.reader.put("CustomersV3", CUSTOMER)
    await fo.send(_create())
    fo.reader.remove("CustomersV3", KEY)
    assert fo.store.row_ref("CustomersV3", ROW_ID) is not None
    assert await fo.send(data_event("OnExternalDeleted", "CustomersV3", ROW_ID, {})) == 1
    deleted = fo.sent("customer")[-1]
    assert (deleted.operation, deleted.key, deleted.data, deleted.base_version) == (
        Operation.DELETE,
        KEY,
        {},
        None,
    )
    assert fo.store.row_ref("CustomersV3", ROW_ID) is None


@pytest.mark.asyncio
async def test_unresolvable_delete_is_counted_logged_and_left_to_the_scan(
    fo: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A delete whose key is nowhere to be found publishes nothing, but is counted and logged, not dropped."""
    with caplog.at_level(logging.WARNING, logger="dualbus.producers.fo_handler"):
        assert await fo.send(data_event("OnExternalDeleted", "CustomersV3", ROW_ID, {})) == 0
    assert fo.handler.unresolved == 1
    assert ROW_ID in caplog.text
    assert "scan" in caplog.text
    assert fo.sent() == []


@pytest.mark.asyncio
async def test_delete_with_a_pre_image_carries_its_base_version(fo: Harness) -> None:
    """Without an index entry the PreImage gives the key, and its DualbusSourceVersion the base version."""
    before = {**CUSTOMER, "DualbusSourceVersion": 12}
    assert await fo.send(data_event("OnExternalDeleted", "CustomersV3", ROW_ID, {}, before)) == 1
    (deleted,) = fo.sent("customer")
    assert (deleted.operation, deleted.key, deleted.base_version) == (Operation.DELETE, KEY, 12)


@pytest.mark.asyncio
async def test_update_of_a_row_gone_since_publishes_its_delete(fo: Harness) -> None:
    """When the row an update names no longer exists, the maps that took it get a delete."""
    update = data_event("OnExternalUpdated", "CustomersV3", ROW_ID, {"OrganizationName": "X"}, CUSTOMER)
    assert await fo.send(update) == 1
    (deleted,) = fo.sent("customer")
    assert (deleted.operation, deleted.key) == (Operation.DELETE, KEY)


@pytest.mark.asyncio
async def test_a_row_leaving_a_map_is_deleted_there_and_created_in_the_other(fo: Harness) -> None:
    """An organisation customer that becomes a person leaves the accounts map and joins the contacts map."""
    fo.reader.put("CustomersV3", CUSTOMER)
    await fo.send(_create())
    person = {**CUSTOMER, "PartyType": "Person", "PersonFirstName": "Ada"}
    fo.reader.put("CustomersV3", person)
    await fo.send(data_event("OnExternalUpdated", "CustomersV3", ROW_ID, {"PartyType": "Person"}))
    created, deleted, joined = fo.sent("customer")
    assert created.operation is Operation.CREATE
    assert (deleted.operation, deleted.key) == (Operation.DELETE, KEY)
    assert (joined.operation, joined.data["PersonFirstName"]) == (Operation.UPDATE, "Ada")


@pytest.mark.asyncio
async def test_unchanged_state_is_published_once_and_dualbus_writes_come_back_once(fo: Harness) -> None:
    """A second event for the same state publishes nothing; a new base version (dualbus's write) publishes."""
    fo.reader.put("CustomersV3", CUSTOMER)
    assert await fo.send(_create()) == 1
    assert await fo.send(data_event("OnExternalUpdated", "CustomersV3", ROW_ID, {"CreditRating": "A"})) == 0
    assert fo.handler.unchanged == 1
    fo.reader.put("CustomersV3", {**CUSTOMER, "DualbusSourceVersion": 9})
    assert await fo.send(data_event("OnExternalUpdated", "CustomersV3", ROW_ID, {})) == 1
    assert fo.sent("customer")[-1].base_version == 9


@pytest.mark.asyncio
async def test_maps_keyed_by_other_fields_get_their_own_keys(fo: Harness) -> None:
    """A legal entity goes to companies by LegalEntityId and to organisations by PartyNumber, deletes too."""
    row_id = "00001234-0000-0000-0100-000000000000"
    fo.reader.put("LegalEntities", LEGAL_ENTITY)
    assert (
        await fo.send(data_event("OnExternalCreated", "LegalEntities", row_id, {"LegalEntityId": "USMF"}))
        == 2
    )
    fo.reader.remove("LegalEntities", {"LegalEntityId": "USMF"})
    assert await fo.send(data_event("OnExternalDeleted", "LegalEntities", row_id, {})) == 2
    company = [(e.operation, e.key) for e in fo.sent("company")]
    organisation = [(e.operation, e.key) for e in fo.sent("organisation")]
    assert company == [
        (Operation.CREATE, {"LegalEntityId": "USMF"}),
        (Operation.DELETE, {"LegalEntityId": "USMF"}),
    ]
    assert organisation == [
        (Operation.CREATE, {"PartyNumber": "000001"}),
        (Operation.DELETE, {"PartyNumber": "000001"}),
    ]


@pytest.mark.asyncio
async def test_events_of_entities_not_synced_here_are_ignored(fo: Harness) -> None:
    """An event of an entity this producer does not sync is acknowledged and counted, nothing published."""
    event = data_event(
        "OnExternalCreated", "VendorsV2", ROW_ID, {"dataAreaId": "usmf", "VendorAccountNumber": "V"}
    )
    assert await fo.send(event) == 0
    assert fo.handler.ignored == 1


@pytest.mark.asyncio
async def test_nothing_is_recorded_until_the_publish_succeeds(fo: Harness) -> None:
    """A failed publish raises and records neither digest nor index entry, so the redelivery publishes it."""
    fo.reader.put("CustomersV3", CUSTOMER)
    fo.client.get_topic_sender("dualbus.customer").failing = True
    with pytest.raises(TransientError):
        await fo.send(_create())
    assert fo.store.row_ref("CustomersV3", ROW_ID) is None
    fo.client.get_topic_sender("dualbus.customer").failing = False
    assert await fo.send(_create()) == 1


@pytest.mark.asyncio
async def test_f_and_o_unavailable_is_transient(fo: Harness) -> None:
    """A failed read raises TransientError, so the intake retries the event rather than losing it."""
    fo.reader.failing = True
    with pytest.raises(TransientError):
        await fo.send(_create())


@pytest.mark.asyncio
async def test_reads_of_a_backlog_go_side_by_side(fo: Harness) -> None:
    """45 customers' events and a legal entity's: the three customer queries and the legal entity's read
    are in flight at once, and every row is published."""
    in_flight, most = 0, 0
    plain = fo.reader.matching

    async def overlapping(schema, keys, select):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return await plain(schema, keys, select)

    fo.reader.matching = overlapping  # type: ignore[method-assign]
    events = []
    for n in range(45):
        row = {**CUSTOMER, "CustomerAccount": f"C-{n:02}"}
        fo.reader.put("CustomersV3", row)
        row_id = f"00004c03-0000-0000-6d28-0141{n:08x}"
        events.append(data_event("OnExternalCreated", "CustomersV3", row_id, row))
    fo.reader.put("LegalEntities", LEGAL_ENTITY)
    events.append(data_event("OnExternalCreated", "LegalEntities", ROW_ID, LEGAL_ENTITY))
    assert await fo.send(*events) >= 46
    assert most == 4
    assert {e.key["CustomerAccount"] for e in fo.sent("customer")} == {f"C-{n:02}" for n in range(45)}
