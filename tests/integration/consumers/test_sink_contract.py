"""One contract, run against both sinks: stale guard, idempotence, only changed fields, no-ops, deletes.

Each sink's half of "Dataverse wins" (concurrent edits) is tested beside the contract, per sink.
"""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import orjson
import pytest
import pytest_asyncio

from dualbus.consumers import ApplyResult, TargetChange
from dualbus.sandbox.dataverse.server import start_dataverse
from dualbus.sandbox.fo.server import FoHandle, start_fo
from dualbus.sandbox.fo.service import ODataRequest, ODataService, Reply
from dualbus.shared.envelope import Operation
from dualbus.shared.errors import PermanentError
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import Direction

from .conftest import CLIENTS, Pipeline
from .helpers import api_sink, changes_of, seed, seed_fo, target_row
from .samples import event

pytestmark = pytest.mark.integration

MAPS = load_maps()


class SinkContract:
    """What every sink guarantees; subclasses say which target and how another user edits a row."""

    direction: Direction
    source: str
    name_field: str
    version_field: str
    # A value the target refuses for the name field.
    refused: object

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

    def version_mark(self, twins, change: TargetChange) -> object:
        """The version column of the row ``change`` addresses."""
        return target_row(twins, change, self.direction)[self.version_field]

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
    async def test_a_change_of_no_mapped_value_is_unchanged(self, twins, sink):
        """The same values again (a newer version) are UNCHANGED: no field is written."""
        first = self.change(twins, 3, 1, "same")
        await sink.apply(first)
        assert await sink.apply(self.change(twins, 3, 2, "same")) is ApplyResult.UNCHANGED
        assert target_row(twins, first, self.direction)[self.name_field] == "same3"

    @pytest.mark.asyncio
    async def test_deletes_are_idempotent(self, twins, sink):
        """A delete removes the row; deleting again is a no-op, not an error."""
        await sink.apply(self.change(twins, 4, 1, "x"))
        gone = self.change(twins, 4, 2, "", operation=Operation.DELETE)
        assert await sink.apply(gone) is ApplyResult.APPLIED
        assert await sink.apply(gone) is ApplyResult.UNCHANGED
        assert target_row(twins, gone, self.direction) is None

    @pytest.mark.asyncio
    async def test_a_gone_row_is_judged_by_its_tombstone(self, twins, sink):
        """With the row deleted, a change no newer than the delete is stale; a newer one re-creates it."""
        await sink.apply(self.change(twins, 12, 1, "x"))
        gone = self.change(twins, 12, 3, "", operation=Operation.DELETE)
        assert await sink.apply(gone) is ApplyResult.APPLIED
        late = dataclasses.replace(self.change(twins, 12, 2, "late"), deleted_version=3)
        assert await sink.apply(late) is ApplyResult.SKIPPED_STALE
        assert target_row(twins, late, self.direction) is None
        newer = dataclasses.replace(self.change(twins, 12, 4, "new"), deleted_version=3)
        assert await sink.apply(newer) is ApplyResult.APPLIED
        assert self.version_mark(twins, newer) == 4

    @pytest.mark.asyncio
    async def test_rejected_data_is_a_permanent_error(self, twins, sink):
        """A value the target refuses raises PermanentError with reason TargetRejected."""
        change = self.change(twins, 5, 1, "r")
        bad = TargetChange(
            table_map=change.table_map,
            key=change.key,
            fields={**change.fields, self.name_field: self.refused},
            source_version=1,
        )
        with pytest.raises(PermanentError) as caught:
            await sink.apply(bad)
        assert caught.value.reason == "TargetRejected"


class TestDataverseSink(SinkContract):
    """The contract against the Dataverse twin, and its conflict rule."""

    direction = Direction.TO_DATAVERSE
    source = "fo"
    name_field = "currencyname"
    version_field = "dualbus_sourceversion"
    refused = "N" * 500  # currencyname holds 100 characters

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

    def row_version(self, twins, change) -> int:
        """The Dataverse row version of the row ``change`` addresses."""
        return int(target_row(twins, change, self.direction)["versionnumber"])

    @pytest.mark.asyncio
    async def test_start_learns_the_id_dataverse_records_for_dualbus(self, twins, sink):
        """start() asks WhoAmI on its own, never inside a $batch, and gets the modifier of dualbus's rows."""
        writer = await sink.start()
        assert writer is not None
        first = self.change(twins, 11, 1, "w")
        await sink.apply(first)
        assert str(target_row(twins, first, self.direction)["_modifiedby_value"]).lower() == writer.lower()

    @pytest.mark.asyncio
    async def test_an_unchanged_row_is_not_written(self, twins, sink):
        """F&O's echo of the row version it received (its base) leaves the row as it was: same row version,
        same version column."""
        first = self.change(twins, 10, 1, "same")
        await sink.apply(first)
        before = self.row_version(twins, first)
        assert await sink.apply(self.change(twins, 10, 2, "same", base=before)) is ApplyResult.UNCHANGED
        assert (self.row_version(twins, first), self.version_mark(twins, first)) == (before, 1)

    @pytest.mark.asyncio
    async def test_an_unchanged_row_dualbus_wrote_records_the_newer_version(self, twins, sink):
        """F&O back at the values dualbus applied: only the mark moves, and an older change that comes after
        (replayed from the dead-letter queue) is stale."""
        first = self.change(twins, 11, 1, "same")
        await sink.apply(first)
        assert await sink.apply(self.change(twins, 11, 3, "same")) is ApplyResult.UNCHANGED
        assert self.version_mark(twins, first) == 3
        assert await sink.apply(self.change(twins, 11, 2, "older")) is ApplyResult.SKIPPED_STALE

    @pytest.mark.asyncio
    async def test_an_edit_fo_has_not_seen_wins(self, twins, sink):
        """Edited by another user after the version F&O last received, the row keeps that edit (conflict)."""
        first = self.change(twins, 6, 1, "ours")
        await sink.apply(first)
        seen = self.row_version(twins, first)
        await asyncio.to_thread(self.edit_as_someone_else, twins, first, "theirs")
        late = self.change(twins, 6, 2, "late", base=seen)
        assert await sink.apply(late) is ApplyResult.SKIPPED_CONFLICT
        assert target_row(twins, late, self.direction)[self.name_field] == "theirs"
        assert self.version_mark(twins, late) == 1

    @pytest.mark.asyncio
    async def test_an_edit_fo_has_seen_is_overwritten(self, twins, sink):
        """When base_version holds the other user's edit, the F&O change made after it is applied."""
        first = self.change(twins, 7, 1, "ours")
        await sink.apply(first)
        await asyncio.to_thread(self.edit_as_someone_else, twins, first, "theirs")
        newer = self.change(twins, 7, 2, "newer", base=self.row_version(twins, first))
        assert await sink.apply(newer) is ApplyResult.APPLIED
        row = target_row(twins, newer, self.direction)
        assert (row[self.name_field], row[self.version_field]) == ("newer7", 2)

    @pytest.mark.asyncio
    async def test_a_row_dualbus_wrote_last_takes_the_change(self, twins, sink):
        """Row versions raised by dualbus's own writes are no conflict, however far beyond base_version."""
        await sink.apply(self.change(twins, 8, 1, "a"))
        assert await sink.apply(self.change(twins, 8, 2, "b", base=0)) is ApplyResult.APPLIED

    @pytest.mark.asyncio
    async def test_an_unknown_base_version_applies(self, twins, sink):
        """Without base_version the change is applied over another user's edit."""
        first = self.change(twins, 9, 1, "ours")
        await sink.apply(first)
        await asyncio.to_thread(self.edit_as_someone_else, twins, first, "theirs")
        assert await sink.apply(self.change(twins, 9, 2, "again")) is ApplyResult.APPLIED
        assert target_row(twins, first, self.direction)[self.name_field] == "again9"

    @pytest.mark.asyncio
    async def test_fos_no_value_leaves_a_dataverse_null_alone(self, twins, sink):
        """F&O answers 0 and "No" for an account that has no credit limit or on-hold status (it holds no
        null), e.g. when it publishes back what dualbus wrote there for a Dataverse null: the nulls stay,
        as reconcile counts them equal, and the row is not written. A number replaces a number."""
        await seed(twins, self.direction)
        sample = event(MAPS["customers"], "fo", 1, version=1, label="n")
        del sample.data["CreditLimit"], sample.data["OnHoldStatus"]
        [first] = changes_of(twins, sample, self.direction)
        assert await sink.apply(first) is ApplyResult.APPLIED
        seen = self.row_version(twins, first)
        echo = event(MAPS["customers"], "fo", 1, version=2, label="n", base=seen)
        echo.data.update(CreditLimit=0, OnHoldStatus="No")
        [back] = changes_of(twins, echo, self.direction)
        assert await sink.apply(back) is ApplyResult.UNCHANGED
        row = target_row(twins, back, self.direction)
        assert (row.get("creditlimit"), row.get("msdyn_onholdstatus")) == (None, None)
        assert self.row_version(twins, back) == seen
        for version, limit in ((3, 250), (4, 0)):
            edit = event(MAPS["customers"], "fo", 1, version=version, label="n", base=seen)
            edit.data.update(CreditLimit=limit, OnHoldStatus="No")
            [change] = changes_of(twins, edit, self.direction)
            assert await sink.apply(change) is ApplyResult.APPLIED
        assert target_row(twins, back, self.direction)["creditlimit"] == 0

    def unaddressable(self, twins, version: int, label: str, **overrides) -> TargetChange:
        """A currency whose key holds '/': Dataverse reads and upserts no row by such a key value."""
        change = self.change(twins, 13, version, label, **overrides)
        code = {"isocurrencycode": "X/Y"}
        fields = {**change.fields, **code} if change.fields else {}
        return dataclasses.replace(change, key=code, fields=fields)

    @pytest.mark.asyncio
    async def test_a_row_whose_key_the_web_api_cannot_address_is_written_by_its_id(self, twins, sink):
        """Created, updated, found stale and deleted through its id, found by a query on its key."""
        first = self.unaddressable(twins, 1, "a")
        assert await sink.apply(first) is ApplyResult.APPLIED
        assert await sink.apply(first) is ApplyResult.SKIPPED_STALE
        assert await sink.apply(self.unaddressable(twins, 2, "b")) is ApplyResult.APPLIED
        rows = [
            r for r in twins.dataverse.store.rows("transactioncurrencies") if r["isocurrencycode"] == "X/Y"
        ]
        assert [(r["currencyname"], r["dualbus_sourceversion"]) for r in rows] == [("b13", 2)]
        gone = self.unaddressable(twins, 3, "", operation=Operation.DELETE)
        assert await sink.apply(gone) is ApplyResult.APPLIED
        assert await sink.apply(gone) is ApplyResult.UNCHANGED
        assert not [
            r for r in twins.dataverse.store.rows("transactioncurrencies") if r["isocurrencycode"] == "X/Y"
        ]

    @pytest.mark.asyncio
    async def test_reads_and_written_rows_answer_only_the_columns_a_decision_reads(self, twins, sink):
        """A row comes back with the compared columns, the version column, the modifier and the row
        version (and its ETag and id), not the table's every column."""
        first = self.change(twins, 14, 1, "sel")
        assert await sink.apply(first) is ApplyResult.APPLIED
        # Written by dualbus: the next change starts from the row the write answered.
        [(_, written)] = sink._written.items()
        assert set(orjson.loads(written)) == {
            "@odata.context",
            "@odata.etag",
            *(name for name in first.fields if name not in first.key),
            "dualbus_sourceversion",
            "_modifiedby_value",
            "versionnumber",
            "transactioncurrencyid",
        }

    @pytest.mark.asyncio
    async def test_a_kept_row_lacking_a_column_the_change_compares_is_read_again(self, twins, sink):
        """A row kept from a change that carried fewer fields reads a column it lacks as null: a change
        that clears that column is decided on a fresh read, and the column is cleared."""
        full = self.change(twins, 15, 1, "keep")
        assert await sink.apply(full) is ApplyResult.APPLIED
        assert target_row(twins, full, self.direction)["currencysymbol"] == "keep15"
        # Written with its key and name only: the row kept from its answer lacks the symbol.
        fewer = dataclasses.replace(full, source_version=2, fields={**full.key, "currencyname": "renamed"})
        assert await sink.apply(fewer) is ApplyResult.APPLIED
        assert "currencysymbol" not in orjson.loads(sink._written[next(iter(sink._written))])
        cleared = dataclasses.replace(full, source_version=3, fields={**full.fields, "currencysymbol": None})
        assert await sink.apply(cleared) is ApplyResult.APPLIED
        assert target_row(twins, cleared, self.direction)["currencysymbol"] is None


class TestBatchedDataverseSink(TestDataverseSink):
    """The contract against the Dataverse twin with every request sent through $batch."""

    batch = True


class WritesToTheTwin:
    """The F&O twin's OData service, watched: the status it answered each PATCH or DELETE, in order. With
    ``gone`` set, another application deletes that row just before the first such write is executed (after
    the sink read it), so the write names a row that no longer exists."""

    def __init__(self, fo: FoHandle, gone: TargetChange | None = None) -> None:
        self.service: ODataService = fo.twin.service
        self.gone = gone
        self.answers: list[int] = []
        fo.twin.service = self  # type: ignore[assignment]  # the app calls only execute()

    def execute(self, request: ODataRequest) -> Reply:
        """Run ``request`` on the twin's service, deleting the ``gone`` row first if it is the first write."""
        if request.method not in {"PATCH", "DELETE"}:
            return self.service.execute(request)
        if self.gone is not None:
            entity, key = self.gone.table_map.fo_entity, tuple(self.gone.key.values())
            self.service.store.delete(entity, key, modified_by="workload")
            self.gone = None
        reply = self.service.execute(request)
        self.answers.append(reply.status)
        return reply


class TestFoSink(SinkContract):
    """The contract against the F&O twin, where every change that is not stale wins."""

    direction = Direction.TO_FO
    source = "dataverse"
    name_field = "Name"
    version_field = "DualbusSourceVersion"
    refused = 500  # a number for an Edm.String property: OData cannot read it

    def edit_as_someone_else(self, twins, change, name):
        with twins.fo.client("workload") as client:
            response = client.patch(
                f"/data/Currencies(CurrencyCode='{change.key['CurrencyCode']}')", json={"Name": name}
            )
        assert response.status_code < 300, response.text

    @pytest.mark.asyncio
    async def test_a_dataverse_change_wins_over_an_fo_edit(self, twins, sink):
        """An F&O edit made meanwhile is overwritten by the next Dataverse change: no clock is compared."""
        first = self.change(twins, 6, 1, "ours")
        await sink.apply(first)
        await asyncio.to_thread(self.edit_as_someone_else, twins, first, "theirs")
        newer = self.change(twins, 6, 2, "newer")
        assert await sink.apply(newer) is ApplyResult.APPLIED
        row = target_row(twins, newer, self.direction)
        assert (row[self.name_field], row[self.version_field]) == ("newer6", 2)

    @pytest.mark.asyncio
    async def test_an_unchanged_row_still_records_the_version_it_received(self, twins, sink):
        """A no-op change advances DualbusSourceVersion, which F&O events report as their base_version."""
        await sink.apply(self.change(twins, 7, 1, "same"))
        same = self.change(twins, 7, 4, "same")
        assert await sink.apply(same) is ApplyResult.UNCHANGED
        assert self.version_mark(twins, same) == 4

    @pytest.mark.asyncio
    async def test_a_dataverse_null_for_a_field_fo_cannot_hold_null_in_is_written_as_its_no_value(
        self, twins, sink
    ):
        """An account without a credit limit or phone becomes a customer with F&O's 0 and "" (it holds no
        null, and its OData refuses a null credit limit); the same account again changes nothing."""
        await asyncio.to_thread(seed_fo, twins)
        sample = event(MAPS["customers"], "dataverse", 1, version=1, label="n")
        sample.data.update(creditlimit=None, telephone1=None)
        [change] = changes_of(twins, sample, self.direction)
        assert await sink.apply(change) is ApplyResult.APPLIED
        row = target_row(twins, change, self.direction)
        assert (row["CreditLimit"], row["PrimaryContactPhone"]) == (0, "")
        assert await sink.apply(dataclasses.replace(change, source_version=2)) is ApplyResult.UNCHANGED

    @pytest.mark.asyncio
    async def test_a_delete_of_a_row_deleted_since_the_read_is_unchanged(self, twins, sink):
        """A row someone deletes between the sink's read and its DELETE: F&O answers the DELETE 400 "No
        resources were found when selecting for update.", and the delete counts as done already."""
        await sink.apply(self.change(twins, 16, 1, "x"))
        gone = self.change(twins, 16, 2, "", operation=Operation.DELETE)
        writes = WritesToTheTwin(twins.fo, gone=gone)
        assert await sink.apply(gone) is ApplyResult.UNCHANGED
        assert writes.answers == [400]
        assert target_row(twins, gone, self.direction) is None

    @pytest.mark.asyncio
    async def test_an_update_of_a_row_deleted_since_the_read_reads_again_and_creates_it(self, twins, sink):
        """A row someone deletes between the sink's read and its PATCH: F&O answers the PATCH 400 "No
        resources were found when selecting for update.", the sink reads again, finds no row and creates
        it with the change (no tombstone says the change is older than a delete)."""
        await sink.apply(self.change(twins, 17, 1, "old"))
        newer = self.change(twins, 17, 2, "new")
        writes = WritesToTheTwin(twins.fo, gone=newer)
        assert await sink.apply(newer) is ApplyResult.APPLIED
        assert writes.answers == [400]
        row = target_row(twins, newer, self.direction)
        assert (row[self.name_field], row[self.version_field]) == ("new17", 2)

    @pytest.mark.asyncio
    async def test_an_update_refused_for_another_reason_is_rejected_not_read_again(self, twins, sink):
        """A PATCH F&O refuses with another 400 (a value its OData cannot read) is rejected at once, for
        dead-lettering as TargetRejected: only the no-row 400 means the row went meanwhile."""
        first = self.change(twins, 18, 1, "kept")
        await sink.apply(first)
        refused = dataclasses.replace(
            first, source_version=2, fields={**first.fields, self.name_field: self.refused}
        )
        writes = WritesToTheTwin(twins.fo)
        with pytest.raises(PermanentError, match="400 Cannot convert the literal '500'") as caught:
            await sink.apply(refused)
        assert caught.value.reason == "TargetRejected"
        assert writes.answers == [400]
        row = target_row(twins, first, self.direction)
        assert (row[self.name_field], row[self.version_field]) == ("kept18", 1)

    def create_as_someone_else(self, twins, code: str, name: str) -> None:
        """Create a currency as another application would."""
        with twins.fo.client("workload") as client:
            response = client.post("/data/Currencies", json={"CurrencyCode": code, "Name": name})
        assert response.status_code == 201, response.text

    @pytest.mark.asyncio
    async def test_a_key_with_a_star_is_told_from_the_rows_its_read_also_matches(self, twins, sink):
        """F&O reads a star in text compared with eq as a wildcard, so reading row 'K*' by its key answers
        'K1X' too: the change goes to its own row, created, and the other row is left as it was."""
        await asyncio.to_thread(self.create_as_someone_else, twins, "K1X", "other")
        rows = await self.apply_starred(twins, sink)
        assert (rows["K1X"]["Name"], rows["K1X"].get("DualbusSourceVersion")) == ("other", None)

    @pytest.mark.asyncio
    async def test_a_key_with_a_star_finds_its_row_past_the_first_page_of_the_matches(self, twins, sink):
        """F&O pages what 'K*' matches: the row 'K*' on the second page is updated, not created again."""
        twins.fo.twin.service.page_size = 2
        for code in ("K*", "K!", "K$"):  # '!' and '$' sort before '*': 'K*' comes third
            await asyncio.to_thread(self.create_as_someone_else, twins, code, "other")
        rows = await self.apply_starred(twins, sink)
        assert (rows["K!"]["Name"], rows["K$"]["Name"]) == ("other", "other")

    async def apply_starred(self, twins, sink) -> dict[str, dict]:
        """Apply version 5 of currency 'K*' (named 'star1'); the twin's currencies by code afterwards."""
        sample = self.change(twins, 1, 5, "star")
        starred = dataclasses.replace(
            sample, key={"CurrencyCode": "K*"}, fields={**sample.fields, "CurrencyCode": "K*"}
        )
        assert await sink.apply(starred) is ApplyResult.APPLIED
        rows = {row["CurrencyCode"]: row for row in twins.fo.twin.store.rows("Currencies")}
        assert (rows["K*"]["Name"], rows["K*"]["DualbusSourceVersion"]) == ("star1", 5)
        return rows

    @pytest.mark.asyncio
    async def test_a_key_fo_must_get_encoded_twice_is_updated_and_deleted(self, twins, sink):
        """A key holding '/', '+' and '%' is written to its key path encoded twice, each write on a request of
        its own when the sink batches (how F&O reads such a key inside a $batch is not published)."""
        sample = self.change(twins, 1, 1, "odd")
        odd = {"CurrencyCode": "/+%"}
        created = dataclasses.replace(sample, key=odd, fields={**sample.fields, **odd})
        assert await sink.apply(created) is ApplyResult.APPLIED
        renamed = dataclasses.replace(created, source_version=2, fields={**created.fields, "Name": "renamed"})
        assert await sink.apply(renamed) is ApplyResult.APPLIED
        rows = {row["CurrencyCode"]: row for row in twins.fo.twin.store.rows("Currencies")}
        assert (rows["/+%"]["Name"], rows["/+%"]["DualbusSourceVersion"]) == ("renamed", 2)
        gone = dataclasses.replace(renamed, source_version=3, delete=True)
        assert await sink.apply(gone) is ApplyResult.APPLIED
        assert "/+%" not in {row["CurrencyCode"] for row in twins.fo.twin.store.rows("Currencies")}


class TestBatchedFoSink(TestFoSink):
    """The contract against the F&O twin with every request sent through $batch."""

    batch = True
