"""Loop prevention towards Dataverse: what the F&O sink writes is not published back by the F&O producer.

The real F&O sink writes the F&O twin; the F&O producer's scan (which decides row states as the event
handler does, ``producers.fo_rows``) reads it and publishes to the emulator. See ``shared.fo_echo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from dualbus.consumers import ApplyResult, FoSink
from dualbus.d365 import FO_WRITE_DIGEST_FIELD
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_poller import FoScanner
from dualbus.producers.fo_reader import FoReader
from dualbus.producers.runner import open_context
from dualbus.producers.settings import ProducerOptions
from dualbus.sandbox.fo import FoHandle
from dualbus.shared.envelope import Operation, Origin
from dualbus.shared.fo_echo import echo_fields
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import Direction
from tests.integration.consumers.conftest import Pipeline
from tests.integration.consumers.helpers import api_sink, changes_of, seed_fo
from tests.integration.consumers.samples import event
from tests.integration.producers.support import Emulator, customer, drain_tap, settings_for

pytestmark = pytest.mark.integration

MAPS = load_maps()
CUSTOMERS = MAPS["customers"]
ROW = "/data/CustomersV3(dataAreaId='usmf',CustomerAccount='{}')"


@pytest.fixture
def twins(fo: FoHandle) -> Pipeline:
    pipeline = Pipeline.__new__(Pipeline)
    pipeline.fo, pipeline.maps = fo, MAPS
    seed_fo(pipeline)
    return pipeline


@pytest_asyncio.fixture
async def sink(twins: Pipeline) -> AsyncIterator[FoSink]:
    async with httpx.AsyncClient() as http:
        sink = api_sink(twins, Direction.TO_FO, http)
        assert isinstance(sink, FoSink)
        yield sink
        await sink.aclose()


@contextlib.asynccontextmanager
async def customer_scanner(emulator: Emulator, fo: FoHandle, tmp_path: Path) -> AsyncIterator[FoScanner]:
    """The F&O producer's scan of the customer area, publishing to the emulator."""
    settings = settings_for(emulator, tmp_path, fo=fo)
    async with open_context(Origin.FO, settings, ProducerOptions(), areas=["customer"]) as ctx:
        yield FoScanner(FoReader(ctx.api), ctx.tables, ctx.publisher, ctx.store, VersionClock(ctx.store))


async def apply(twins: Pipeline, sink: FoSink, n: int, *, version: int, label: str) -> str:
    """Apply a Dataverse change of sample customer ``n`` to F&O; returns its account number."""
    [change] = changes_of(
        twins, event(CUSTOMERS, "dataverse", n, version=version, label=label), Direction.TO_FO
    )
    assert await sink.apply(change) is ApplyResult.APPLIED
    return str(change.key["CustomerAccount"])


@pytest.mark.asyncio
async def test_what_dualbus_writes_to_fo_is_not_published_back_and_edits_after_it_are(
    emulator: Emulator, twins: Pipeline, sink: FoSink, tmp_path: Path
) -> None:
    """A row dualbus creates comes back once (the producer held no state of it); its updates by the F&O
    sink are recorded, not published, and counted as echoes; a user's edit after them is published, and so
    is a user's edit back to dualbus's values once that edit was published (the row's mark has not moved
    since)."""
    fo = twins.fo
    async with customer_scanner(emulator, fo, tmp_path) as scanner:
        await scanner.scan_once()  # the seeds, as any scan finds them
        drain_tap(emulator.connection_string, ["customer"], idle=1.0)

        account = await apply(twins, sink, 1, version=5, label="a")
        assert await scanner.scan_once() == 1
        await apply(twins, sink, 1, version=7, label="b")
        assert await scanner.scan_once() == 0
        await apply(twins, sink, 1, version=8, label="c")
        assert await scanner.scan_once() == 0
        assert scanner.skipped_echo == 2
        written = await asyncio.to_thread(_read, fo, account)

        with fo.client("workload") as workload:
            assert workload.patch(ROW.format(account), json={"OrganizationName": "Edited in F&O"}).is_success
            assert await scanner.scan_once() == 1
            back = {"OrganizationName": written["OrganizationName"]}
            assert workload.patch(ROW.format(account), json=back).is_success
            assert await scanner.scan_once() == 1
        assert scanner.skipped_echo == 2
    events = drain_tap(emulator.connection_string, ["customer"], expect=3)
    assert [(e.operation, e.base_version) for e in events] == [
        (Operation.CREATE, 5),
        (Operation.UPDATE, 8),
        (Operation.UPDATE, 8),
    ]
    assert [e.data["OrganizationName"] for e in events[1:]] == ["Edited in F&O", written["OrganizationName"]]


@pytest.mark.asyncio
async def test_a_write_of_dualbus_over_an_edit_the_producer_has_not_read_yet_is_published(
    emulator: Emulator, twins: Pipeline, sink: FoSink, tmp_path: Path
) -> None:
    """A user edits a field after dualbus's write and before the producer reads the row: the digest no
    longer matches, and the row is published with the user's edit."""
    fo = twins.fo
    async with customer_scanner(emulator, fo, tmp_path) as scanner:
        account = await apply(twins, sink, 2, version=5, label="a")
        await scanner.scan_once()
        drain_tap(emulator.connection_string, ["customer"], idle=1.0)
        await apply(twins, sink, 2, version=6, label="b")
        with fo.client("workload") as workload:
            assert workload.patch(ROW.format(account), json={"CreditLimit": 1234.5}).is_success
        assert await scanner.scan_once() == 1
        assert scanner.skipped_echo == 0
    [published] = drain_tap(emulator.connection_string, ["customer"], expect=1)
    assert (published.operation, published.data["CreditLimit"], published.base_version) == (
        Operation.UPDATE,
        1234.5,
        6,
    )


@pytest.mark.asyncio
async def test_a_row_copied_with_its_marks_under_another_key_is_published(
    emulator: Emulator, twins: Pipeline, sink: FoSink, tmp_path: Path
) -> None:
    """A row copied with dualbus's marks, the same values and mark under another key (a renamed account,
    a copy into another company), is no echo: the digest covers the key, and the producer holds no state
    of the new one. Neither is a copy of another row's marks with values of its own."""
    fo = twins.fo
    async with customer_scanner(emulator, fo, tmp_path) as scanner:
        account = await apply(twins, sink, 3, version=9, label="a")
        await scanner.scan_once()
        drain_tap(emulator.connection_string, ["customer"], idle=1.0)
        written = await asyncio.to_thread(_read, fo, account)
        fields = ("CustomerAccount", *echo_fields(CUSTOMERS), "DualbusSourceVersion", FO_WRITE_DIGEST_FIELD)
        copy = {name: written[name] for name in fields}
        assert copy["DualbusSourceVersion"] == 9
        assert copy[FO_WRITE_DIGEST_FIELD]
        with fo.client("dualbus") as pipeline:
            response = pipeline.post("/data/CustomersV3", json={**copy, "CustomerAccount": "COPY-1"})
            assert response.status_code == 201, response.text
            marks = {name: copy[name] for name in ("DualbusSourceVersion", FO_WRITE_DIGEST_FIELD)}
            response = pipeline.post("/data/CustomersV3", json={**customer("H-1", "By hand"), **marks})
            assert response.status_code == 201, response.text
        assert await scanner.scan_once() == 2
        assert scanner.skipped_echo == 0
    published = drain_tap(emulator.connection_string, ["customer"], expect=2)
    assert sorted((e.operation, e.company, e.key["CustomerAccount"]) for e in published) == [
        (Operation.CREATE, "USMF", "COPY-1"),
        (Operation.CREATE, "USMF", "H-1"),
    ]


@pytest.mark.asyncio
async def test_a_write_that_does_not_carry_every_field_going_back_writes_no_digest(
    emulator: Emulator, twins: Pipeline, sink: FoSink, tmp_path: Path
) -> None:
    """A change that leaves a field the map carries back to Dataverse unwritten (a map may carry a field
    from F&O only) writes no digest: that field may hold an F&O edit not yet published, which must not be
    taken for dualbus's. The row comes back, as every write did before."""
    fo = twins.fo
    async with customer_scanner(emulator, fo, tmp_path) as scanner:
        account = await apply(twins, sink, 4, version=5, label="a")
        await scanner.scan_once()
        drain_tap(emulator.connection_string, ["customer"], idle=1.0)
        with fo.client("workload") as workload:  # an F&O user's edit, not read by the producer yet
            assert workload.patch(ROW.format(account), json={"PrimaryContactEmail": "f@o.example"}).is_success
        sample = event(CUSTOMERS, "dataverse", 4, version=7, label="b")
        [change] = changes_of(twins, sample, Direction.TO_FO)
        narrowed = {name: value for name, value in change.fields.items() if name != "PrimaryContactEmail"}
        assert await sink.apply(dataclasses.replace(change, fields=narrowed)) is ApplyResult.APPLIED
        written = await asyncio.to_thread(_read, fo, account)
        assert (written["DualbusSourceVersion"], written[FO_WRITE_DIGEST_FIELD]) == (7, "")
        assert await scanner.scan_once() == 1
        assert scanner.skipped_echo == 0
    [published] = drain_tap(emulator.connection_string, ["customer"], expect=1)
    assert published.data["PrimaryContactEmail"] == "f@o.example"


def _read(fo: FoHandle, account: str) -> dict[str, object]:
    with fo.client("workload") as workload:
        response = workload.get(ROW.format(account), params={"cross-company": "true"})
        response.raise_for_status()
        body: dict[str, object] = response.json()
        return body
