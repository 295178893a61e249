"""One contract, run against both sinks: stale guard, idempotence, only changed fields, conflicts, deletes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from consumers import ApplyResult, TargetChange
from sandbox.dataverse.server import start_dataverse
from sandbox.fo.server import start_fo
from shared.envelope import Operation
from shared.errors import PermanentError
from shared.maps import load_maps
from shared.topology import Direction

from .conftest import CLIENTS, Pipeline
from .helpers import api_sink, changes_of, target_row
from .samples import event

pytestmark = pytest.mark.integration

MAPS = load_maps()


class SinkContract:
    """What every sink guarantees; subclasses say which target and how another user edits a row."""

    direction: Direction
    source: str
    name_field: str
    version_field: str

    @pytest.fixture
    def twins(self):
        with start_dataverse(clients=CLIENTS, limits=None) as dataverse, start_fo(clients=CLIENTS) as fo:
            pipeline = Pipeline.__new__(Pipeline)
            pipeline.dataverse, pipeline.fo, pipeline.maps = dataverse, fo, MAPS
            yield pipeline

    batch = False

    @pytest_asyncio.fixture
    async def sink(self, twins):
        async with httpx.AsyncClient() as http:
            sink = api_sink(twins, self.direction, http, batch=self.batch)
            yield sink
            await sink.aclose()

    def change(self, twins, n: int, version: int, label: str, **overrides) -> TargetChange:
        """The target change of sample currency ``n`` at ``version``."""
        sample = event(MAPS["currency"], self.source, n, version=version, label=label, **overrides)
        [change] = changes_of(twins, sample, self.direction)
        return change

    def edit_as_someone_else(self, twins, change: TargetChange, name: str) -> None:
        """Change the row's name as another application would."""
        raise NotImplementedError

    @pytest.mark.asyncio
    async def test_creates_then_skips_the_same_version(self, twins, sink):
        """A new record is applied; the same version again is skipped as stale and changes nothing."""
        first = self.change(twins, 1, 3, "a")
        assert await sink.apply(first) is ApplyResult.APPLIED
        assert await sink.apply(first) is ApplyResult.SKIPPED_STALE
        row = target_row(twins, first, self.direction)
        assert row[self.version_field] == 3
        assert row[self.name_field] == "a1"

    @pytest.mark.asyncio
    async def test_newer_applies_and_older_is_stale(self, twins, sink):
        """A newer version overwrites; an older one that arrives later is skipped."""
        await sink.apply(self.change(twins, 2, 5, "old"))
        assert await sink.apply(self.change(twins, 2, 7, "new")) is ApplyResult.APPLIED
        assert await sink.apply(self.change(twins, 2, 6, "mid")) is ApplyResult.SKIPPED_STALE
        row = target_row(twins, self.change(twins, 2, 7, "new"), self.direction)
        assert (row[self.name_field], row[self.version_field]) == ("new2", 7)

    @pytest.mark.asyncio
    async def test_a_newer_edit_by_someone_else_wins(self, twins, sink):
        """When another user changed the row after the event's time, the event is skipped as a conflict."""
        await sink.apply(self.change(twins, 3, 1, "ours"))
        late = self.change(twins, 3, 2, "late", time=datetime.now(UTC) - timedelta(minutes=5))
        await asyncio.to_thread(self.edit_as_someone_else, twins, late, "theirs")
        assert await sink.apply(late) is ApplyResult.SKIPPED_CONFLICT
        assert target_row(twins, late, self.direction)[self.name_field] == "theirs"

    @pytest.mark.asyncio
    async def test_an_older_edit_by_someone_else_is_overwritten(self, twins, sink):
        """An edit made before the event's time loses: the newer change is applied over it."""
        await sink.apply(self.change(twins, 6, 1, "ours"))
        await asyncio.to_thread(self.edit_as_someone_else, twins, self.change(twins, 6, 1, "x"), "theirs")
        newer = self.change(twins, 6, 2, "newer", time=datetime.now(UTC) + timedelta(minutes=5))
        assert await sink.apply(newer) is ApplyResult.APPLIED
        row = target_row(twins, newer, self.direction)
        assert (row[self.name_field], row[self.version_field]) == ("newer6", 2)

    @pytest.mark.asyncio
    async def test_deletes_are_idempotent(self, twins, sink):
        """A delete removes the row; deleting again is a no-op, not an error."""
        await sink.apply(self.change(twins, 4, 1, "x"))
        gone = self.change(twins, 4, 2, "", operation=Operation.DELETE)
        assert await sink.apply(gone) is ApplyResult.APPLIED
        assert await sink.apply(gone) is ApplyResult.UNCHANGED
        assert target_row(twins, gone, self.direction) is None

    @pytest.mark.asyncio
    async def test_rejected_data_is_a_permanent_error(self, twins, sink):
        """A value the target refuses raises PermanentError with reason TargetRejected."""
        change = self.change(twins, 5, 1, "r")
        bad = TargetChange(
            table_map=change.table_map,
            key=change.key,
            fields={**change.fields, self.name_field: "N" * 500},
            source_version=1,
            time=change.time,
        )
        with pytest.raises(PermanentError) as caught:
            await sink.apply(bad)
        assert caught.value.reason == "TargetRejected"


class TestDataverseSink(SinkContract):
    """The contract against the Dataverse twin."""

    direction = Direction.TO_DATAVERSE
    source = "fo"
    name_field = "currencyname"
    version_field = "dualbus_sourceversion"

    def edit_as_someone_else(self, twins, change, name):
        dataverse = twins.dataverse
        token = dataverse.issuer.issue(
            client_id="workload", client_secret=CLIENTS["workload"], scope=dataverse.scope
        )
        code = change.key["isocurrencycode"]
        response = httpx.patch(
            f"{dataverse.api_url}transactioncurrencies(isocurrencycode='{code}')",
            json={"currencyname": name},
            headers={"Authorization": f"Bearer {token['access_token']}", "If-Match": "*"},
        )
        assert response.status_code < 300, response.text


class TestBatchedDataverseSink(TestDataverseSink):
    """The contract against the Dataverse twin with every request sent through $batch."""

    batch = True


class TestFoSink(SinkContract):
    """The contract against the F&O twin."""

    direction = Direction.TO_FO
    source = "dataverse"
    name_field = "Name"
    version_field = "DualbusSourceVersion"

    def edit_as_someone_else(self, twins, change, name):
        with twins.fo.client("workload") as client:
            response = client.patch(
                f"/data/Currencies(CurrencyCode='{change.key['CurrencyCode']}')", json={"Name": name}
            )
        assert response.status_code < 300, response.text
