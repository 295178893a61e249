"""The F&O full scan: changed rows published, unchanged ones not, gone ones deleted, no loss in a crash."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dualbus.producers.checkpoints import CheckpointError, CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.errors import SourceError
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_poller import FoScanner
from dualbus.producers.fo_rows import EntityLocks
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import default_topology
from tests.unit.producers.contexts import data_event
from tests.unit.producers.fakes import FakeFoReader, RecordingClient, sent_envelopes


def customer(number: int, name: str = "Customer") -> dict[str, object]:
    return {
        "dataAreaId": "usmf",
        "CustomerAccount": f"C-{number}",
        "OrganizationName": f"{name} {number}",
        "PartyType": "Organization",
        "DualbusSourceVersion": None,
    }


@dataclass
class Harness:
    path: Path
    client: RecordingClient
    reader: FakeFoReader
    store: CheckpointStore

    def scanner(self) -> FoScanner:
        """A scanner as a (re)started producer makes it."""
        return FoScanner(
            self.reader,  # type: ignore[arg-type]  # the in-memory rows read like FoReader
            source_tables(load_maps(), Origin.FO, ["customer"]),
            Publisher(self.client, default_topology()),  # type: ignore[arg-type]
            self.store,
            VersionClock(self.store),
            retry=RetryPolicy(attempts=1),
        )

    def restart(self) -> FoScanner:
        """Close the store as a killed process leaves it, open it again, and make a new scanner."""
        self.store.close()
        self.store = CheckpointStore(self.path)
        return self.scanner()

    def sent(self) -> list[Envelope]:
        return sent_envelopes(self.client, "dualbus.customer")


@pytest.fixture
def fo(tmp_path: Path):
    path = tmp_path / "producer-fo.sqlite3"
    harness = Harness(
        path, RecordingClient(max_bytes=256 * 1024), FakeFoReader(page_size=2), CheckpointStore(path)
    )
    for number in range(5):
        harness.reader.put("CustomersV3", customer(number))
    yield harness
    harness.store.close()


def _fail_next_checkpoint(store: CheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next write of the store fails, as a process killed right after a publish would leave it."""
    original = store.put_many

    def fail_once(*_args: object, **_kwargs: object) -> None:
        monkeypatch.setattr(store, "put_many", original)
        raise CheckpointError("killed between publish and checkpoint")

    monkeypatch.setattr(store, "put_many", fail_once)


@pytest.mark.asyncio
async def test_first_scan_publishes_every_row_and_the_next_one_nothing(fo: Harness) -> None:
    """Rows never published go out as creates, across pages; an unchanged table publishes nothing."""
    scanner = fo.scanner()
    assert await scanner.scan_once() == 5
    assert {e.operation for e in fo.sent()} == {Operation.CREATE}
    assert {e.key["CustomerAccount"] for e in fo.sent()} == {f"C-{n}" for n in range(5)}
    assert await scanner.scan_once() == 0
    assert scanner.unchanged == 5


@pytest.mark.asyncio
async def test_only_the_changed_row_is_published(fo: Harness) -> None:
    """A row whose mapped state changed is published as an update with a later version; others are not."""
    scanner = fo.scanner()
    await scanner.scan_once()
    fo.reader.put("CustomersV3", customer(3, name="Renamed"))
    assert await scanner.scan_once() == 1
    first, last = fo.sent()[3], fo.sent()[-1]
    assert (last.operation, last.key["CustomerAccount"]) == (Operation.UPDATE, "C-3")
    assert last.data["OrganizationName"] == "Renamed 3"
    assert last.source_version > first.source_version


@pytest.mark.asyncio
async def test_a_gone_row_is_deleted_once(fo: Harness) -> None:
    """A stored key the scan no longer finds becomes a delete, and is then forgotten."""
    scanner = fo.scanner()
    await scanner.scan_once()
    fo.reader.remove("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "C-2"})
    assert await scanner.scan_once() == 1
    deleted = fo.sent()[-1]
    assert (deleted.operation, deleted.key, deleted.base_version) == (
        Operation.DELETE,
        {"dataAreaId": "usmf", "CustomerAccount": "C-2"},
        None,
    )
    assert await scanner.scan_once() == 0


@pytest.mark.asyncio
async def test_a_row_that_left_the_map_is_deleted_from_it(fo: Harness) -> None:
    """A customer that became a person leaves the accounts map, then joins the contacts map: in that order.

    A consumer applies a delete to every map of the area, so the delete must not follow the create.
    """
    scanner = fo.scanner()
    await scanner.scan_once()
    fo.reader.put("CustomersV3", {**customer(4), "PartyType": "Person"})
    assert await scanner.scan_once() == 2
    left, joined = fo.sent()[-2:]
    assert (joined.operation, joined.key["CustomerAccount"]) == (Operation.CREATE, "C-4")
    assert (left.operation, left.key["CustomerAccount"]) == (Operation.DELETE, "C-4")


@pytest.mark.asyncio
async def test_a_row_the_pages_passed_over_is_looked_up_before_any_delete(fo: Harness) -> None:
    """Rows shifting under server paging can go unread: such a row is found by key and not deleted."""
    scanner = fo.scanner()
    await scanner.scan_once()
    fo.reader.skipped_by_pages.add(("usmf", "C-1"))
    assert await scanner.scan_once() == 0
    fo.reader.skipped_by_pages.clear()
    assert await scanner.scan_once() == 0


@pytest.mark.asyncio
async def test_a_crash_between_publish_and_checkpoint_republishes_on_restart(
    fo: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published but not recorded: the restarted scan publishes those rows again, then records them."""
    _fail_next_checkpoint(fo.store, monkeypatch)
    with pytest.raises(CheckpointError):
        await fo.scanner().scan_once()
    first_page = [e.key["CustomerAccount"] for e in fo.sent()]
    assert len(first_page) == 2
    scanner = fo.restart()
    assert await scanner.scan_once() == 5
    again = fo.sent()[2:]
    assert {e.key["CustomerAccount"] for e in again} >= set(first_page)
    assert min(e.source_version for e in again) > max(e.source_version for e in fo.sent()[:2])
    assert await scanner.scan_once() == 0


@pytest.mark.asyncio
async def test_a_crash_after_publishing_a_delete_publishes_it_again(
    fo: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete published but not recorded is published again by the next scan, never lost."""
    await fo.scanner().scan_once()
    fo.reader.remove("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "C-0"})
    scanner = fo.scanner()
    original = fo.store.put_many

    def fail_on_forgetting(values: object, **kwargs: object) -> None:
        if any(change.digest is None for change in kwargs.get("digests", ())):  # type: ignore[attr-defined]
            monkeypatch.setattr(fo.store, "put_many", original)
            raise CheckpointError("killed between publish and checkpoint")
        original(values, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fo.store, "put_many", fail_on_forgetting)
    with pytest.raises(CheckpointError):
        await scanner.scan_once()
    assert await fo.restart().scan_once() == 1
    deletes = [e for e in fo.sent() if e.operation is Operation.DELETE]
    assert [e.key["CustomerAccount"] for e in deletes] == ["C-0", "C-0"]


@pytest.mark.asyncio
async def test_rows_published_by_events_are_not_published_again_by_the_scan(fo: Harness) -> None:
    """The event handler records digests too, so a scan after it republishes only real gaps."""
    locks = EntityLocks()
    tables = source_tables(load_maps(), Origin.FO, ["customer"])
    publisher = Publisher(fo.client, default_topology())  # type: ignore[arg-type]
    clock = VersionClock(fo.store)
    handler = FoEventHandler(fo.reader, tables, publisher, fo.store, clock, locks=locks)  # type: ignore[arg-type]
    for number in range(5):
        row_id = f"00004c03-0000-0000-{number:04d}-000000000000"
        payload = data_event("OnExternalCreated", "CustomersV3", row_id, customer(number))
        await handler.handle([parse_data_event(payload)])
    fo.reader.put("CustomersV3", customer(9))  # its event was missed
    scanner = FoScanner(fo.reader, tables, publisher, fo.store, clock, locks=locks)  # type: ignore[arg-type]
    assert await scanner.scan_once() == 1
    assert fo.sent()[-1].key["CustomerAccount"] == "C-9"


@pytest.mark.asyncio
async def test_an_entity_that_fails_holds_up_no_other(fo: Harness) -> None:
    """When F&O refuses one entity's read, the other entities are still scanned, and the failure raised."""
    tables = source_tables(load_maps(), Origin.FO, ["customer"])
    fo.reader.put("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10", "Description": "Retail"})
    # Payment terms come first in the area's order: the entities after them must still be scanned.
    refusing = RefusingReader(fo.reader, "PaymentTerms")
    publisher = Publisher(fo.client, default_topology())  # type: ignore[arg-type]
    scanner = FoScanner(refusing, tables, publisher, fo.store, VersionClock(fo.store))  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="PaymentTerms"):
        await scanner.scan_once()
    assert [e.entity for e in fo.sent()] == ["CustomerGroups"] + ["CustomersV3"] * 5


class RefusingReader:
    """Reads like the in-memory reader, except that one entity is refused as F&O would refuse a bad query."""

    def __init__(self, reader: FakeFoReader, refused: str) -> None:
        self._reader = reader
        self._refused = refused

    def pages(self, entity, **options):
        if entity == self._refused:
            raise SourceError(f"reading {entity} failed: the $select names an unknown field")
        return self._reader.pages(entity, **options)

    async def matching(self, schema, keys, select):
        return await self._reader.matching(schema, keys, select)
