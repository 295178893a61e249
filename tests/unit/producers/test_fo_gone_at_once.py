"""A row dualbus created and deleted at once is not published as a delete that could never be applied.

A vendor contact's delete must carry ``ContactPersonId`` (Dataverse keys the contact by it). When the create
event's row is gone before the producer reads it and was never published, nothing knows that value: the
row's own delete event, whose PreImage carries it, publishes the delete.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Operation, Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import default_topology
from tests.unit.producers.contexts import data_event
from tests.unit.producers.fakes import FakeFoReader, RecordingClient, sent_envelopes

ROW_ID = "00004c03-0000-0000-6d28-014105000077"
CONTACT = {
    "dataAreaId": "usmf",
    "ContactPersonPartyNumber": "000001044",
    "AssociatedContactType": "Vendor",
    "AssociatedContactNumber": "US-V00003",
    "ContactPersonId": "US-CP00044",
}


@pytest.fixture
def handler(tmp_path: Path) -> Iterator[tuple[FoEventHandler, RecordingClient]]:
    """The vendor area's event handler over an F&O that holds no row (it is gone when read)."""
    client = RecordingClient(max_bytes=256 * 1024)
    store = CheckpointStore(tmp_path / "producer-fo.sqlite3")
    tables = source_tables(load_maps(), Origin.FO, ["vendor"])
    handling = FoEventHandler(
        FakeFoReader(),  # type: ignore[arg-type]  # holds no row: it is gone when read
        tables,
        Publisher(client, default_topology()),  # type: ignore[arg-type]
        store,
        VersionClock(store),
        retry=RetryPolicy(attempts=1),
    )
    try:
        yield handling, client
    finally:
        store.close()


# The event names the row by its key; what else the row held is read over OData, and it is gone.
KEY_ONLY = {name: value for name, value in CONTACT.items() if name != "ContactPersonId"}


@pytest.mark.asyncio
async def test_a_create_whose_row_is_gone_publishes_nothing_and_its_delete_event_publishes_the_delete(
    handler: tuple[FoEventHandler, RecordingClient],
) -> None:
    handling, client = handler
    created = data_event("OnExternalCreated", "CDSContactPersonsV2", ROW_ID, KEY_ONLY)
    await handling.handle([parse_data_event(created)])
    assert sent_envelopes(client) == []
    deleted = data_event("OnExternalDeleted", "CDSContactPersonsV2", ROW_ID, {}, CONTACT)
    await handling.handle([parse_data_event(deleted)])
    (delete,) = sent_envelopes(client, "dualbus.vendor")
    assert delete.operation is Operation.DELETE
    assert delete.data.get("ContactPersonId") == "US-CP00044"


@pytest.mark.asyncio
async def test_a_delete_that_arrived_before_its_create_in_one_batch_is_published(
    handler: tuple[FoEventHandler, RecordingClient],
) -> None:
    """F&O's processing threads deliver side by side: the delete came first, the create after it, both in
    one inbox round, and the row is gone. The create stood for the row and knew no ContactPersonId, so
    nothing was published, and the delete, consumed with it, was lost."""
    handling, client = handler
    deleted = data_event("OnExternalDeleted", "CDSContactPersonsV2", ROW_ID, {}, CONTACT)
    created = data_event("OnExternalCreated", "CDSContactPersonsV2", ROW_ID, KEY_ONLY)
    await handling.handle([parse_data_event(deleted), parse_data_event(created)])
    (delete,) = sent_envelopes(client, "dualbus.vendor")
    assert delete.operation is Operation.DELETE
    assert delete.data.get("ContactPersonId") == "US-CP00044"
