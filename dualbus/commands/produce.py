"""``dualbus produce`` and ``dualbus initial-sync``: publish one system's changes, or backfill every row."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

import typer
from rich.console import Console

from dualbus.commands.common import fail, finite, known_areas, split_values, usage_error
from dualbus.ops.applied import wait_applied
from dualbus.producers.initial_sync import SyncSummary, run_initial_sync
from dualbus.producers.main import configured, produce
from dualbus.producers.progress import RichProgress, render_summary
from dualbus.producers.runner import open_context
from dualbus.producers.settings import load_producer_settings
from dualbus.shared import loops
from dualbus.shared.bus_admin import admin_counts
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError, DualbusError
from dualbus.shared.maps import area_layers, load_maps
from dualbus.shared.settings import load_settings
from dualbus.shared.topology import Direction, Topology, default_topology

__all__ = ["register"]


class Source(enum.StrEnum):
    """The system changes are read from."""

    FO = "fo"
    DATAVERSE = "dataverse"


def produce_command(
    source: Annotated[Source, typer.Option("--from", help="The system to publish changes from.")],
    areas: Annotated[
        list[str] | None, typer.Option("--areas", help="Areas to publish (default: all).")
    ] = None,
) -> None:
    """Publish one system's changes to the area topics until stopped (SIGTERM or Ctrl-C).

    Example: dualbus produce --from dataverse --areas customer,vendor
    """
    try:
        produce(Origin(source.value), areas=known_areas(split_values(areas)))
    except DualbusError as exc:
        fail(str(exc))


def initial_sync_command(
    *,
    source: Annotated[Source, typer.Option("--from", help="The system to read every row from.")] = Source.FO,
    areas: Annotated[list[str] | None, typer.Option("--areas", help="Areas to sync (default: all).")] = None,
    companies: Annotated[
        list[str] | None,
        typer.Option("--companies", help="Companies (legal entities) to sync (default: all)."),
    ] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=10_000, help="Rows per page.")] = 2000,
    wait_applied: Annotated[
        bool,
        typer.Option(
            "--wait-applied/--no-wait",
            help="Before each layer of areas, wait until the consumers applied the layers it looks up.",
        ),
    ] = True,
    wait_timeout: Annotated[
        float,
        typer.Option(min=0.1, callback=finite, help="Seconds to wait for one layer to be applied."),
    ] = 600.0,
) -> None:
    """Publish every row of the chosen areas in dependency order; a killed run resumes where it stopped.

    Areas go in layers (companies and currencies before the customers that look them up); with
    --wait-applied (the default) a layer starts once the consumers have applied the one before.

    Example: dualbus initial-sync --from fo --areas company,currency,customer --companies USMF
    """
    origin = Origin(source.value)
    if origin is Origin.DATAVERSE and companies:
        # It was taken and ignored: every company's rows went to F&O, those left out too.
        raise usage_error(
            "filters an F&O initial sync only: a Dataverse sync publishes each table whole", "--companies"
        )
    console = Console(markup=False)  # the summary holds entity and company names, not markup
    chosen = known_areas(split_values(areas))
    layers = area_layers(load_maps(), chosen or default_topology().areas)

    async def before_layer(previous: Sequence[str]) -> None:
        if wait_applied:
            await asyncio.to_thread(_wait_for_layer, console, previous, origin, wait_timeout)

    try:
        summary = loops.run(
            _initial_sync(
                origin, chosen, split_values(companies), page_size, layers=layers, before_layer=before_layer
            )
        )
    except DualbusError as exc:
        fail(str(exc))
    console.print(render_summary(summary))


def _wait_for_layer(console: Console, layer: Sequence[str], origin: Origin, timeout: float) -> None:
    """Wait until the other side's consumers applied ``layer`` (the next layer looks its rows up)."""
    settings = load_settings()
    if settings.servicebus is None:
        raise ConfigError("DUALBUS_SERVICEBUS__CONNECTION_STRING or __NAMESPACE must be set")
    direction = Direction.TO_DATAVERSE if origin is Origin.FO else Direction.TO_FO
    topology = default_topology()
    synced = [area for area in layer if _syncs(topology, area, direction)]
    with (
        admin_counts(settings.servicebus) as counts,
        console.status(f"waiting until {', '.join(synced)} applied"),
    ):
        wait_applied(counts, topology, synced, direction, timeout=timeout)


def _syncs(topology: Topology, area: str, direction: Direction) -> bool:
    return any(sub.direction is direction for sub in topology.topic(area).subscriptions)


async def _initial_sync(
    origin: Origin,
    areas: list[str] | None,
    companies: list[str] | None,
    page_size: int,
    *,
    layers: list[list[str]],
    before_layer: Callable[[Sequence[str]], Awaitable[None]],
) -> SyncSummary:
    settings = configured(f"dualbus-initial-sync-{origin.value}")
    options = load_producer_settings()
    async with open_context(origin, settings, options, areas=areas) as context:
        with RichProgress() as progress:
            return await run_initial_sync(
                context,
                companies=companies,
                page_size=page_size,
                progress=progress,
                layers=layers,
                before_layer=before_layer,
            )


def register(app: typer.Typer) -> None:
    """Add ``produce`` and ``initial-sync`` to the CLI."""
    app.command("produce")(produce_command)
    app.command("initial-sync")(initial_sync_command)
