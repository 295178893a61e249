"""One map's reconcile: hold the target's rows, stream the source's past them, count and repair drift."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from dualbus.ops._reconcile_compare import DriftKind, MapComparison, RecordDrift, TargetEntry
from dualbus.ops._reconcile_read import Page, read_dataverse, read_fo
from dualbus.ops._reconcile_repair import may_delete_orphan, orphan_delete, repair_event
from dualbus.ops._reconcile_report import MapSummary, ReconcileReport, RowProblem
from dualbus.producers.clock import VersionClock
from dualbus.producers.dv_lookups import LookupResolver
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import SourceTable
from dualbus.shared.api import ApiClient
from dualbus.shared.envelope import Envelope, Origin
from dualbus.shared.errors import EnvelopeError, TransformError
from dualbus.shared.maps import MapSet, Side, TableMap, other_side

__all__ = ["MapRun", "Progress", "ReconcileOptions", "RunContext", "source_side"]

# Called as rows arrive: (map name, side being read, rows read on that side so far).
Progress = Callable[[str, Side, int], None]
# Deletes of orphans are sent in batches of this many, so a large set of them is never held at once.
_DELETE_BATCH = 500
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcileOptions:
    """What to reconcile and what to do about drift."""

    areas: frozenset[str] | None = None
    # Upper-case legal entity ids, e.g. USMF; rows of no company (currencies) are always compared.
    companies: frozenset[str] | None = None
    repair: bool = False
    source: Side | None = None
    delete_orphans: bool = False
    # Drifted records listed per map; all are counted, and repaired when asked, either way.
    max_details: int = 1000
    page_size: int = 5000


def source_side(table_map: TableMap, override: Side | None = None) -> Side:
    """The side whose state is the truth for a map: ``override`` for two-way maps, else the map's origin."""
    if table_map.carries("dataverse") and table_map.carries("fo"):
        return override or "fo"
    return "fo" if table_map.carries("dataverse") else "dataverse"


@dataclass(frozen=True, slots=True)
class RunContext:
    """What every map of one run shares: options, the report, API clients, the publisher for repairs.

    ``clock`` gives F&O repairs their versions (``_reconcile_repair.source_version``).
    """

    maps: MapSet
    options: ReconcileOptions
    report: ReconcileReport
    fo: ApiClient
    dataverse: ApiClient
    resolver: LookupResolver
    publisher: Publisher | None
    progress: Progress | None
    run_id: str
    now: datetime
    clock: VersionClock
    # dualbus's Dataverse user id (WhoAmI), asked for when orphans may be deleted; None when unknown.
    dataverse_writer: str | None = None


class MapRun:
    """Reconciles one table map from its source side."""

    def __init__(self, context: RunContext, table_map: TableMap) -> None:
        self._ctx = context
        self._map = table_map
        source = source_side(table_map, context.options.source)
        self._source: Side = source
        self._target = other_side(source)
        self._table = SourceTable(table_map, Origin(source))
        self._comparison = MapComparison(context.maps, table_map, source, companies=context.options.companies)
        self.summary = MapSummary(table_map.name, table_map.area, source)
        # The version clock's reading taken before the source page being checked was read (F&O only).
        self._page_reading: int | None = None

    async def run(self) -> MapSummary:
        """Read both sides, record drift and publish repairs; returns this map's summary."""
        self._ctx.report.maps.append(self.summary)
        async for page in self._pages(self._target):
            for row in page:
                self._guard(self._target, row, self._comparison.add_target)
        async for page, reading in self._source_pages():
            self._page_reading = reading
            await self._publish([e for row in page if (e := self._check(row)) is not None])
        await self._leftovers()
        return self.summary

    async def _pages(self, side: Side) -> AsyncIterator[Page]:
        ctx, read = self._ctx, 0
        pages = (
            read_fo(ctx.fo, self._map.fo_entity)
            if side == "fo"
            else read_dataverse(ctx.dataverse, self._map, ctx.resolver, page_size=ctx.options.page_size)
        )
        async for page in pages:
            read += len(page)
            if side == "fo":
                self.summary.fo_rows = read
            else:
                self.summary.dataverse_rows = read
            if ctx.progress is not None:
                ctx.progress(self._map.name, side, read)
            yield page

    async def _source_pages(self) -> AsyncIterator[tuple[Page, int | None]]:
        """The source side's pages, each with the version clock's reading taken before its GET (F&O).

        An F&O repair carries that reading as its version. A reading taken later, as the row is checked,
        could top the version the F&O producer gave a user's edit made after the GET, and the repair's older
        state would then overwrite the edit in Dataverse. Taken before, any such edit's version is higher.
        """
        pages = aiter(self._pages(self._source))
        while True:
            reading = self._ctx.clock.next() if self._source == "fo" else None
            page = await anext(pages, None)
            if page is None:
                return
            yield page, reading

    def _check(self, row: Mapping[str, object]) -> Envelope | None:
        """Compare one source row; the repair to publish for it, if it drifted and repairs are on."""
        outcome = self._guard(self._source, row, self._comparison.check_source)
        if outcome is None:
            return None
        company, drift = outcome
        self._ctx.report.area(self._map.area, company).compared += 1
        if drift is None:
            return None
        self._record(drift)
        if self._ctx.publisher is None:
            return None
        create = drift.kind is not DriftKind.DIFFERS
        return self._guard(self._source, row, lambda r: self._repair(r, create=create))

    def _repair(self, row: Mapping[str, object], *, create: bool) -> Envelope:
        ctx = self._ctx
        return repair_event(
            self._table, row, run_id=ctx.run_id, now=ctx.now, create=create, fo_reading=self._page_reading
        )

    async def _leftovers(self) -> None:
        ctx, deletes = self._ctx, []
        for drift, entry in self._comparison.leftovers():
            ctx.report.area(drift.area, drift.company).compared += 1
            self._record(drift)
            delete = self._orphan_delete(entry)
            if delete is None:
                ctx.report.orphans_kept += 1
                continue
            deletes.append(delete)
            if len(deletes) >= _DELETE_BATCH:
                await self._publish(deletes, deleting=True)
                deletes = []
        await self._publish(deletes, deleting=True)

    def _orphan_delete(self, entry: TargetEntry) -> Envelope | None:
        """The delete of a target row its source lacks; None when it stays (see ``may_delete_orphan``)."""
        ctx = self._ctx
        if not may_delete_orphan(self._map, entry.mark):
            ctx.report.orphans_never_synced += 1
            return None
        if (
            ctx.publisher is None
            or not ctx.options.delete_orphans
            or not self._written_last_by_dualbus(entry)
        ):
            return None
        return orphan_delete(self._table, entry.key, entry.mark, run_id=ctx.run_id, now=ctx.now)

    def _written_last_by_dualbus(self, entry: TargetEntry) -> bool:
        """Whether no one edited the orphan since dualbus wrote it, where that can be told and matters.

        On a two-way map a Dataverse row someone renamed after dualbus wrote it (its new key still on its
        way to F&O: a paused route, a backlog) holds dualbus's mark, and passed for an orphan; its delete
        went back to F&O too, and the record was gone from both systems. It is kept (reported) instead.
        F&O exposes no modifier, and on a one-way map nothing travels back: those pass.
        """
        both_ways = self._map.carries("fo") and self._map.carries("dataverse")
        if not both_ways or self._comparison.target != "dataverse":
            return True
        writer = self._ctx.dataverse_writer
        return bool(writer) and (entry.modified_by or "").lower() == str(writer).lower()

    def _record(self, drift: RecordDrift) -> None:
        report = self._ctx.report
        report.count(drift)
        self.summary.drifted += 1
        if self.summary.drifted <= self._ctx.options.max_details:
            report.drifts.append(drift)
        else:
            report.unlisted += 1

    async def _publish(self, envelopes: list[Envelope], *, deleting: bool = False) -> None:
        if not envelopes or self._ctx.publisher is None:
            return
        sent = await self._ctx.publisher.publish(envelopes)
        self.summary.repairs += sent
        if deleting:
            self._ctx.report.deletes_published += sent
        else:
            self._ctx.report.repairs_published += sent

    def _guard(
        self, side: Side, row: Mapping[str, object], step: Callable[[Mapping[str, object]], _T]
    ) -> _T | None:
        """Run one row's step; a row the map cannot transform is reported as a problem, not raised."""
        try:
            return step(row)
        except (TransformError, EnvelopeError) as exc:
            company = self._comparison.row_company(side, row)
            wanted = self._ctx.options.companies
            if company is None or wanted is None or company in wanted:
                self._ctx.report.area(self._map.area, company).problems += 1
                self._ctx.report.problems.append(
                    RowProblem(self._map.name, self._map.area, side, self._describe(side, row), str(exc))
                )
            return None

    def _describe(self, side: Side, row: Mapping[str, object]) -> str:
        return ",".join(f"{part}={_plain(row.get(part))}" for part in self._map.key_on(side))


def _plain(value: object) -> str:
    """A key part as text; an expanded lookup reads as its natural value."""
    if isinstance(value, Mapping):
        return ",".join(str(v) for v in value.values())
    return "" if value is None else str(value)
