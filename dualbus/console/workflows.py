"""The work of the console's jobs: reconcile an area, repair picked records, initial-sync an area.

Each function runs on a job's thread and reports progress into the job as it goes. They call what the CLI
calls (``dualbus.ops.reconcile``, ``producers.initial_sync``) with the console's settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dualbus.console.jobs import Job, LayerProgress
from dualbus.console.repair import repair_selected
from dualbus.ops.applied import wait_applied
from dualbus.ops.reconcile import Progress, ReconcileOptions, ReconcileReport, areconcile
from dualbus.producers.initial_sync import SyncSummary, run_initial_sync
from dualbus.producers.runner import open_context
from dualbus.producers.settings import load_producer_settings
from dualbus.shared import loops
from dualbus.shared.bus_admin import admin_counts
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import Side, area_dependencies, area_layers, load_maps
from dualbus.shared.settings import Settings
from dualbus.shared.topology import Direction, default_topology

__all__ = ["run_reconcile", "run_repair", "run_sync", "sync_layers"]

# How long one layer may take to be applied before the next starts, as the CLI's default.
_LAYER_TIMEOUT_SECONDS = 600.0
_PAGE_SIZE = 2000


def _rows(job: Job) -> Progress:
    def progress(map_name: str, side: Side, rows: int) -> None:
        job.rows[f"{map_name}: {'F&O' if side == 'fo' else 'Dataverse'}"] = rows

    return progress


def run_reconcile(settings: Settings, job: Job) -> ReconcileReport:
    """Compare one area's records on both sides (no repair)."""
    options = ReconcileOptions(areas=frozenset([job.area]))
    return loops.run(areconcile(settings, options, progress=_rows(job)))


def run_repair(settings: Settings, wanted: frozenset[str], job: Job) -> ReconcileReport:
    """Republish the source state of the picked records of one area."""
    if not wanted:
        raise ConfigError("no drifted record picked: tick the records to repair")
    return loops.run(repair_selected(settings, job.area, wanted, progress=_rows(job)))


def sync_layers(area: str, *, with_dependencies: bool) -> list[list[str]]:
    """``area`` (and, if asked, every area it looks up, however indirectly) in dependency layers."""
    maps = load_maps()
    chosen = {area}
    if with_dependencies:
        needs = area_dependencies(maps)
        pending = [area]
        while pending:
            for other in needs.get(pending.pop(), frozenset()) - chosen:
                chosen.add(other)
                pending.append(other)
    return area_layers(maps, chosen)


class _LayerCounter:
    """Counts the source rows read into the layer of their area (labels read ``area/table company``).

    Rows read, not published: a row its map does not take (its source filter) is counted too; the job's
    summary tells what was published.
    """

    def __init__(self, job: Job) -> None:
        self._job = job

    def start(self, total: int) -> None:
        """The estimate of records is not shown: the layers' counts are."""

    def advance(self, records: int, label: str) -> None:
        """Add to the layer of the label's area and mark it publishing."""
        layer = self._job.layer_of(label.split("/", 1)[0])
        if layer is not None:
            layer.records += records
            layer.step = "publishing"


def run_sync(settings: Settings, origin: Origin, job: Job, *, with_dependencies: bool = True) -> SyncSummary:
    """Publish every row of the job's area (and of what it looks up), layer by layer, as the CLI does."""
    if settings.servicebus is None:
        raise ConfigError("Service Bus is not configured: set DUALBUS_SERVICEBUS__CONNECTION_STRING")
    bus = settings.servicebus
    layers = sync_layers(job.area, with_dependencies=with_dependencies)
    job.layers = [LayerProgress(list(layer)) for layer in layers]
    direction = Direction.TO_DATAVERSE if origin is Origin.FO else Direction.TO_FO
    topology = default_topology()

    def wait(previous: Sequence[str]) -> None:
        synced = [
            area
            for area in previous
            if any(sub.direction is direction for sub in topology.topic(area).subscriptions)
        ]
        for layer in job.layers:
            if layer.areas == list(previous):
                layer.step = "published; waiting for the consumers"
        with admin_counts(bus) as counts:
            wait_applied(counts, topology, synced, direction, timeout=_LAYER_TIMEOUT_SECONDS)
        for layer in job.layers:
            if layer.areas == list(previous):
                layer.step = "taken by the consumers"

    async def before_layer(previous: Sequence[str]) -> None:
        await asyncio.to_thread(wait, previous)

    async def sync() -> SyncSummary:
        chosen = [area for layer in layers for area in layer]
        async with open_context(origin, settings, load_producer_settings(), areas=chosen) as context:
            return await run_initial_sync(
                context,
                page_size=_PAGE_SIZE,
                progress=_LayerCounter(job),
                layers=layers,
                before_layer=before_layer,
            )

    summary = loops.run(sync())
    if job.layers:
        wait(job.layers[-1].areas)
    return summary
