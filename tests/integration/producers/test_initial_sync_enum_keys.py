"""An initial sync pages through an entity keyed by an enum against the F&O twin, which, as F&O, compares
an enum with eq and ne only: every row is published once, in the order F&O sorts the enum."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dualbus.d365 import FO_VERSION_FIELD
from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.events import EchoFilter
from dualbus.producers.initial_sync import run_initial_sync
from dualbus.producers.publisher import Publisher
from dualbus.producers.runner import ProducerContext
from dualbus.producers.tables import source_tables
from dualbus.sandbox.fo import DEFAULT_CLIENTS, FoHandle, start_fo
from dualbus.shared.api import ApiClient
from dualbus.shared.envelope import Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import default_topology
from tests.twin_settings import IssuedTokens
from tests.unit.producers.fakes import RecordingClient, sent_envelopes

pytestmark = pytest.mark.integration

ENTITY = "OrganizationHierarchyPurposes"
# Out of the enum's order on purpose; "Security" comes after "ExpenseControl" in HierarchyPurpose.
PURPOSES = ("Security", "NotSet", "Project", "ExpenseControl", "PurchaseControl", "MultiCompanyProcessing")


@pytest.fixture
def fo() -> Iterator[FoHandle]:
    with start_fo() as running:
        yield running


def _seed(fo: FoHandle) -> None:
    with fo.client("dualbus") as client:
        for name in ("T1", "T2"):
            assert client.post("/data/OrganizationHierarchyTypes", json={"Name": name}).status_code == 201
        for purpose in PURPOSES:
            for name in ("T1", "T2"):
                body = {"HierarchyPurpose": purpose, "HierarchyType": name}
                assert client.post(f"/data/{ENTITY}", json=body).status_code == 201


async def _initial_sync(fo: FoHandle, tmp_path: Path, urls: list[httpx.URL]) -> tuple[RecordingClient, int]:
    """Run the organisation area's initial sync, three rows a page; ``urls`` gets every request's URL."""

    async def seen(request: httpx.Request) -> None:
        urls.append(request.url)

    bus = RecordingClient(max_bytes=256 * 1024)
    context = ssl.create_default_context(cafile=str(fo.ca_bundle))
    async with httpx.AsyncClient(verify=context, event_hooks={"request": [seen]}) as http:
        tokens = IssuedTokens(fo, client_id="dualbus", secret=DEFAULT_CLIENTS["dualbus"])
        producer = ProducerContext(
            origin=Origin.FO,
            api=ApiClient(fo.url, tokens, http),
            publisher=Publisher(bus, default_topology()),  # type: ignore[arg-type]
            store=CheckpointStore(tmp_path / "checkpoints.sqlite"),
            echo=EchoFilter.of(),
            tables=source_tables(load_maps(), Origin.FO, ["organisation"]),
            bus=None,  # type: ignore[arg-type]  # the publisher has its own
        )
        # Three rows a page: a page ends inside one purpose and inside the enum's run of purposes.
        summary = await run_initial_sync(producer, page_size=3, layers=[["organisation"]])
        producer.store.close()
    return bus, summary.records


@pytest.mark.asyncio
async def test_pages_of_an_enum_keyed_entity_publish_every_row_once(fo: FoHandle, tmp_path: Path) -> None:
    _seed(fo)
    bus, records = await _initial_sync(fo, tmp_path, [])
    published = [e.key for e in sent_envelopes(bus) if e.entity == ENTITY]
    expected = [{"HierarchyPurpose": p, "HierarchyType": t} for p in PURPOSES for t in ("T1", "T2")]
    assert sorted(published, key=str) == sorted(expected, key=str)
    assert records >= len(expected)


@pytest.mark.asyncio
async def test_pages_ask_only_for_the_fields_their_events_carry(fo: FoHandle, tmp_path: Path) -> None:
    """Without $select F&O answers every field of the entity, each with a value (it holds no null): some 300
    of them for CustomersV3. Each page of rows names the fields its map carries, and the version mark."""
    _seed(fo)
    urls: list[httpx.URL] = []
    await _initial_sync(fo, tmp_path, urls)
    pages = [url for url in urls if url.path == f"/data/{ENTITY}" and "$count" not in url.params]
    [table] = [t for t in source_tables(load_maps(), Origin.FO, ["organisation"]) if t.name == ENTITY]
    wanted = {*table.carried_fields, FO_VERSION_FIELD}
    assert {"HierarchyPurpose", "HierarchyType"} < wanted
    assert pages
    assert all(set(url.params["$select"].split(",")) == wanted for url in pages)
