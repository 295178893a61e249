"""Reconcile: prove that F&O and Dataverse agree, map by map, and republish the source's state where not.

Both systems are read through their APIs, area by area in initial-sync order, page by page. For each map
the target side's rows are held (compactly) and the source side's rows stream past them, so memory grows
with one map's target table, never with everything. A map's source is F&O when it goes F&O → Dataverse or
both ways, Dataverse when it goes only to F&O; ``source`` overrides it for two-way maps.

With ``repair`` every drifted record's current source state is republished as a repair event on its area's
topic, for the consumers to apply. A record missing on its source side is reported and left alone unless
``delete_orphans`` is set, which publishes a delete for it instead; on a two-way map, a record dualbus never
wrote (no version mark) is only reported even then, as it may be new and not yet synced.

Call :func:`reconcile` from plain code, :func:`areconcile` from inside an event loop.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

from dualbus.ops._reconcile_compare import DriftKind, FieldDrift, MapComparison, RecordDrift, same_value
from dualbus.ops._reconcile_read import ReconcileError
from dualbus.ops._reconcile_report import AreaSummary, MapSummary, ReconcileReport, RowProblem
from dualbus.ops._reconcile_run import MapRun, Progress, ReconcileOptions, RunContext, source_side
from dualbus.producers.clock import process_clock
from dualbus.producers.dv_lookups import LookupResolver
from dualbus.producers.publisher import Publisher
from dualbus.shared import loops
from dualbus.shared.api import ApiClient, dataverse_user_id
from dualbus.shared.bus import async_bus_client
from dualbus.shared.errors import ConfigError
from dualbus.shared.http import async_http_client
from dualbus.shared.identity import open_tokens
from dualbus.shared.maps import MapSet, Side, TableMap, load_maps, map_order
from dualbus.shared.settings import ApiSettings, Settings, load_settings
from dualbus.shared.topology import default_topology

__all__ = [
    "AreaSummary",
    "DriftKind",
    "FieldDrift",
    "MapComparison",
    "MapSummary",
    "Progress",
    "ReconcileError",
    "ReconcileOptions",
    "ReconcileReport",
    "RecordDrift",
    "RowProblem",
    "areconcile",
    "reconcile",
    "same_value",
    "source_side",
]

# The Web API root below a Dataverse organisation's URL.
_DATAVERSE_API_PATH = "/api/data/v9.2"


def reconcile(
    settings: Settings | None = None,
    *,
    areas: Iterable[str] | None = None,
    companies: Iterable[str] | None = None,
    repair: bool = False,
    source: Side | None = None,
    delete_orphans: bool = False,
    progress: Progress | None = None,
) -> ReconcileReport:
    """Run a reconcile to the end and return its report (settings from ``DUALBUS_*`` when not given)."""
    options = ReconcileOptions(
        areas=frozenset(areas) if areas else None,
        companies=frozenset(c.upper() for c in companies) if companies else None,
        repair=repair,
        source=source,
        delete_orphans=delete_orphans,
    )
    return loops.run(areconcile(settings or load_settings(), options, progress=progress))


async def areconcile(
    settings: Settings,
    options: ReconcileOptions | None = None,
    *,
    maps: MapSet | None = None,
    progress: Progress | None = None,
    map_run: Callable[[RunContext, TableMap], MapRun] = MapRun,
) -> ReconcileReport:
    """Reconcile from inside an event loop; raises DualbusError (ConfigError, TransientError, ...).

    ``map_run`` runs one map; the console passes one that repairs only the records an operator picked.
    """
    options = options or ReconcileOptions()
    if options.delete_orphans and not options.repair:
        raise ConfigError("deleting orphans is a repair: ask for repair too (--repair --delete-orphans)")
    maps = maps if maps is not None else load_maps()
    selected = _selected_maps(maps, options.areas)
    now = datetime.now(UTC)
    report = ReconcileReport(run_id=uuid.uuid4().hex, started=now)
    async with _open(settings, options) as (fo, dataverse, publisher):
        # dualbus's Dataverse user id tells its own writes; unknown, an orphan of a two-way map is kept.
        writer = await dataverse_user_id(dataverse) if options.delete_orphans else None
        context = RunContext(
            maps=maps,
            options=options,
            report=report,
            fo=fo,
            dataverse=dataverse,
            resolver=LookupResolver(dataverse, list(maps)),
            publisher=publisher,
            progress=progress,
            run_id=report.run_id,
            now=now,
            clock=process_clock(),
            dataverse_writer=writer,
        )
        for table_map in selected:
            await map_run(context, table_map).run()
    report.finished = datetime.now(UTC)
    return report


def _selected_maps(maps: MapSet, areas: frozenset[str] | None) -> list[TableMap]:
    known = {m.area for m in maps}
    unknown = sorted((areas or frozenset()) - known)
    if unknown:
        raise ConfigError(f"unknown area(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [m for m in map_order(maps) if areas is None or m.area in areas]


async def _api(stack: AsyncExitStack, settings: ApiSettings | None, name: str, path: str = "") -> ApiClient:
    if settings is None:
        raise ConfigError(f"{name} is not configured: set DUALBUS_{name.upper()}__URL and its credentials")
    http = await stack.enter_async_context(async_http_client(timeout=settings.timeout_seconds))
    tokens = await stack.enter_async_context(open_tokens(settings))
    return ApiClient(settings.url.rstrip("/") + path, tokens, http)


@asynccontextmanager
async def _open(
    settings: Settings, options: ReconcileOptions
) -> AsyncIterator[tuple[ApiClient, ApiClient, Publisher | None]]:
    """The two API clients and, for repairs, a publisher; all closed on exit."""
    async with AsyncExitStack() as stack:
        fo = await _api(stack, settings.fo, "fo")
        dataverse = await _api(stack, settings.dataverse, "dataverse", _DATAVERSE_API_PATH)
        publisher: Publisher | None = None
        if options.repair:
            if settings.servicebus is None:
                raise ConfigError("repairs are published to Service Bus: set DUALBUS_SERVICEBUS__*")
            bus = await stack.enter_async_context(async_bus_client(settings.servicebus))
            publisher = Publisher(bus, default_topology())
            stack.push_async_callback(publisher.close)
        yield fo, dataverse, publisher
