"""The initial sync: every row of every area, in dependency order, resumable page by page.

Areas go in the maps' order (``area_order``: companies and currencies before the groups, customers, vendors
and products that look them up). F&O entities are read per company with keyset paging (``$filter`` on the
key after the last row read, ``$orderby`` the key), so a page's position never shifts under concurrent
writes. After each page is published its checkpoint (``initial.<origin>.<map>.<company>``) records the
last key; a killed run resumes after it and re-reads only what did not complete. Dataverse tables are
taken as change-tracking snapshots, which also leave the delta token the producer continues from.

F&O rows are published with ``source_version`` 0, the lowest there is: any live change supersedes the
backfilled state, and a re-run is absorbed as stale. ``base_version`` is the row's ``DualbusSourceVersion``.
A backfilled state is not recorded as published for the F&O scan: a consumer may skip it as stale, and
then only the scan's own publish brings that row's current state across.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from dualbus.d365 import FO_VERSION_FIELD, FoEntity, fo_entities, fo_key_literals, fo_literal
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.errors import SourceError
from dualbus.producers.events import EchoFilter, build_envelope
from dualbus.producers.flow import publish_then_checkpoint
from dualbus.producers.fo_reader import READ_RETRY, FoReader
from dualbus.producers.fo_rows import base_version, fo_fields_read
from dualbus.producers.runner import ProducerContext
from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import odata_literal
from dualbus.shared.prerequisites import lacking, refusal

__all__ = ["Progress", "SyncSummary", "TableResult", "keyset_filter", "run_initial_sync"]

_COMPANY = "dataAreaId"
_ALL = "*"


class Progress(Protocol):
    """Told how much there is and how much was done; the CLI shows a rich progress bar."""

    def start(self, total: int) -> None:
        """The number of records the run will read (an estimate: rows change meanwhile)."""

    def advance(self, records: int, label: str) -> None:
        """``records`` more were published, while working on ``label``."""


@dataclass(slots=True)
class TableResult:
    """What the run did for one map and company."""

    area: str
    table: str
    company: str
    records: int = 0
    pages: int = 0
    resumed: bool = False


@dataclass(slots=True)
class SyncSummary:
    """The outcome of a run: per table and company, and in total."""

    origin: Origin
    results: list[TableResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        """Records published by this run (a resumed run counts only what it published itself)."""
        return sum(r.records for r in self.results)

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.records / self.seconds if self.seconds > 0 else 0.0


def keyset_filter(entity: FoEntity, fields: Sequence[str], after: Sequence[Any]) -> str | None:
    """The OData filter for ``entity``'s rows whose key comes after ``after`` in ``fields`` order; None when
    no key can come after it.

    For (a, b) after (x, y): ``(a gt x) or (a eq x and b gt y)``, each value a literal of its field's type
    (an enum as ``Microsoft.Dynamics.DataEntities.<Enum>'<Member>'``, a date-time bare: ``fo_literal``).
    F&O compares enums with eq and ne only (data-entities/odata.md, "Using enums"), so an enum field's "after
    x" names the members after x one by one: F&O orders an enum by its values, which its metadata lists
    in order (``d365`` keeps them so).
    """
    literals = list(fo_key_literals(entity, dict(zip(fields, after, strict=True))).values())
    clauses = []
    for index, name in enumerate(fields):
        later = _later(entity, name, after[index], literals[index])
        if later is not None:
            equal = [f"{fields[i]} eq {literals[i]}" for i in range(index)]
            clauses.append(" and ".join([*equal, later]))
    return " or ".join(f"({clause})" for clause in clauses) if clauses else None


def _later(entity: FoEntity, name: str, value: object, literal: str) -> str | None:
    """``name gt <literal>``, or for an enum field the members after ``value`` (None if there is none)."""
    field = entity.fields[name]
    if field.enum is None:
        return f"{name} gt {literal}"
    members = entity.enums[field.enum]
    if value not in members:
        raise SourceError(f"{entity.entity_set}.{name} holds {value!r}, not a member of {field.enum}")
    after = members[members.index(str(value)) + 1 :]
    if not after:
        return None
    return "(" + " or ".join(f"{name} eq {fo_literal(field, member)}" for member in after) + ")"


async def run_initial_sync(
    context: ProducerContext,
    *,
    companies: Iterable[str] | None = None,
    page_size: int = 2000,
    progress: Progress | None = None,
    layers: Sequence[Sequence[str]] | None = None,
    before_layer: Callable[[Sequence[str]], Awaitable[None]] | None = None,
) -> SyncSummary:
    """Publish every row of the context's tables, resuming a killed run from its checkpoints.

    With ``layers`` (areas in dependency layers, e.g. ``shared.maps.area_layers``), either side syncs
    layer by layer and awaits ``before_layer(previous layer)`` before each next one, so that a caller can
    wait until the consumers applied what the next layer looks up. One run spans every layer: a killed
    run resumes in the layer where it stopped. ``companies`` filters an F&O sync only (ConfigError for a
    Dataverse one, which publishes each table whole).
    """
    started = time.perf_counter()
    prefix = f"initial.{context.origin.value}."
    if context.store.get(f"{prefix}complete"):
        # The last run finished: this is a new run, not a resume.
        context.store.delete_prefix(prefix)
    if context.origin is Origin.FO:
        await _require_fo_fields(context)
        summary = await _FoSync(context, companies, page_size, progress).run(layers, before_layer)
    elif companies is not None:
        raise ConfigError("a Dataverse initial sync publishes each table whole: it takes no companies")
    else:
        summary = await _dataverse_sync(context, progress, layers, before_layer)
    context.store.put(f"{prefix}complete", True)
    summary.seconds = time.perf_counter() - started
    return summary


async def _require_fo_fields(context: ProducerContext) -> None:
    """Every field the F&O reads name is there (PrerequisiteError naming each one missing, not F&O's refusal
    of the first page for its first missing field). Asked with the reads' own retries: a command run by
    hand gives up when F&O does not answer, as its reads would."""
    wanted = fo_fields_read(context.tables)
    lacks = await READ_RETRY.call(lambda: lacking(context.api, wanted, root="data"))
    if lacks:
        raise refusal("fo", lacks)


class _FoSync:
    """The F&O side: per map, per company, keyset pages with a checkpoint after each."""

    def __init__(
        self,
        context: ProducerContext,
        companies: Iterable[str] | None,
        page_size: int,
        progress: Progress | None,
    ) -> None:
        self._context = context
        self._reader = FoReader(context.api)
        self._wanted = {c.lower() for c in companies} if companies is not None else None
        self._page_size = page_size
        self._progress = progress

    async def run(
        self,
        layers: Sequence[Sequence[str]] | None,
        before_layer: Callable[[Sequence[str]], Awaitable[None]] | None,
    ) -> SyncSummary:
        summary = SyncSummary(origin=Origin.FO)
        plan = [
            (table, company) for table in self._context.tables for company in await self._companies(table)
        ]
        if self._progress is not None:
            self._progress.start(sum([await self._count(table, company) for table, company in plan]))
        async for _, in_layer in _layer_by_layer(layers, [table for table, _ in plan], before_layer):
            for table, company in plan:
                if table in in_layer:
                    summary.results.append(await self._sync(table, company))
        return summary

    async def _companies(self, table: SourceTable) -> list[str]:
        if _COMPANY not in table.key_fields:
            return [_ALL]
        if self._wanted is not None:
            return sorted(self._wanted)
        # The reader retries across a short outage of F&O; past that the run stops and resumes later.
        rows = await self._reader.page("LegalEntities", orderby="LegalEntityId")
        return [str(row["LegalEntityId"]).lower() for row in rows]

    async def _count(self, table: SourceTable, company: str) -> int:
        state = self._context.store.get(_checkpoint(table, company)) or {}
        if state.get("done"):
            return 0
        return await self._reader.count(table.name, filter_=_company_filter(company)) - int(
            state.get("records", 0)
        )

    async def _sync(self, table: SourceTable, company: str) -> TableResult:
        name = _checkpoint(table, company)
        state: dict[str, Any] = self._context.store.get(name) or {"after": None, "pages": 0, "records": 0}
        result = TableResult(table.area, table.name, company, resumed=state["pages"] > 0)
        fields = [f for f in table.key_fields if f != _COMPANY or company == _ALL]
        entity = fo_entities()[table.name]
        while not state.get("done"):
            later = keyset_filter(entity, fields, state["after"]) if state["after"] else None
            if state["after"] and later is None:
                break  # the last row read had the greatest key there can be
            query = _and(_company_filter(company), later)
            # Only what the event carries: F&O answers every one of an entity's fields otherwise (CustomersV3
            # has some 300, each with a value: F&O holds no null).
            select = (*table.carried_fields, *table.delete_fields, FO_VERSION_FIELD)
            rows = await self._reader.page(
                table.name, select=select, filter_=query, orderby=",".join(fields), top=self._page_size
            )
            now = datetime.now(UTC)
            envelopes = [_envelope(table, row, now) for row in rows if table.takes(row)]
            done = len(rows) < self._page_size
            state = {
                "after": [rows[-1][f] for f in fields] if rows else state["after"],
                "pages": state["pages"] + 1,
                "records": state["records"] + len(rows),
                "done": done,
            }
            # A backfill's rows go many a message (shared.message_batches): per-message costs dominate.
            await publish_then_checkpoint(
                self._context.publisher, self._context.store, envelopes, {name: state}, batched=True
            )
            result.records += len(envelopes)
            result.pages += 1
            if self._progress is not None:
                self._progress.advance(len(rows), f"{table.area}/{table.name} {company}")
        return result


async def _dataverse_sync(
    context: ProducerContext,
    progress: Progress | None,
    layers: Sequence[Sequence[str]] | None,
    before_layer: Callable[[Sequence[str]], Awaitable[None]] | None,
) -> SyncSummary:
    """Dataverse: one change-tracking snapshot per table, checkpointed per table once published, layer by
    layer as the F&O side goes (F&O refuses a customer whose group or currency it does not hold yet)."""
    summary = SyncSummary(origin=Origin.DATAVERSE)
    # Everything is published in an initial sync, also what dualbus wrote: the stale guard sorts it out.
    source = DataverseSource(context.api, context.tables, context.publisher, context.store, EchoFilter.of())
    if progress is not None:
        progress.start(0)
    async for _, tables in _layer_by_layer(layers, context.tables, before_layer):
        for table in tables:
            name = _checkpoint(table, _ALL)
            if context.store.get(name):
                continue
            count = await source.snapshot(table)
            context.store.put(name, {"done": True, "records": count})
            summary.results.append(TableResult(table.area, table.name, _ALL, records=count, pages=1))
            if progress is not None:
                progress.advance(count, f"{table.area}/{table.name}")
    return summary


async def _layer_by_layer(
    layers: Sequence[Sequence[str]] | None,
    tables: Sequence[SourceTable],
    before_layer: Callable[[Sequence[str]], Awaitable[None]] | None,
) -> AsyncIterator[tuple[Sequence[str], list[SourceTable]]]:
    """Each layer of areas that has tables here, with them, in order; ``before_layer(previous layer)`` is
    awaited before each but the first (a layer with no table on this side is neither synced nor awaited)."""
    previous: Sequence[str] | None = None
    for layer in layers or [sorted({table.area for table in tables})]:
        in_layer = [table for table in tables if table.area in layer]
        if not in_layer:
            continue
        if previous is not None and before_layer is not None:
            await before_layer(previous)
        yield layer, in_layer
        previous = layer


def _envelope(table: SourceTable, row: dict[str, Any], read_at: datetime) -> Envelope:
    return build_envelope(
        table, row, Operation.UPDATE, source_version=0, time=read_at, base_version=base_version(row)
    )


def _checkpoint(table: SourceTable, company: str) -> str:
    return f"initial.{table.origin.value}.{table.table_map.name}.{company}"


def _company_filter(company: str) -> str | None:
    return None if company == _ALL else f"{_COMPANY} eq {odata_literal(company)}"


def _and(*clauses: str | None) -> str | None:
    present = [f"({c})" for c in clauses if c]
    return " and ".join(present) if present else None
