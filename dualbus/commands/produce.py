"""``dualbus produce`` and ``dualbus initial-sync``: publish one system's changes, or backfill every row."""

from __future__ import annotations

import asyncio
import enum
from typing import Annotated

import typer
from rich.console import Console

from producers.initial_sync import SyncSummary, run_initial_sync
from producers.main import configured, produce
from producers.progress import RichProgress, render_summary
from producers.runner import open_context
from producers.settings import load_producer_settings
from shared.envelope import Origin
from shared.errors import DualbusError

__all__ = ["register"]


class Source(enum.StrEnum):
    """The system changes are read from."""

    FO = "fo"
    DATAVERSE = "dataverse"


def _split(values: list[str] | None) -> list[str] | None:
    """Options given as repeated flags or comma-separated lists."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


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
        produce(Origin(source.value), areas=_split(areas))
    except DualbusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def initial_sync_command(
    source: Annotated[Source, typer.Option("--from", help="The system to read every row from.")] = Source.FO,
    areas: Annotated[list[str] | None, typer.Option("--areas", help="Areas to sync (default: all).")] = None,
    companies: Annotated[
        list[str] | None,
        typer.Option("--companies", help="Companies (legal entities) to sync (default: all)."),
    ] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=10_000, help="Rows per page.")] = 2000,
) -> None:
    """Publish every row of the chosen areas in dependency order; a killed run resumes where it stopped.

    Example: dualbus initial-sync --from fo --areas company,currency,customer --companies USMF
    """
    try:
        summary = asyncio.run(
            _initial_sync(Origin(source.value), _split(areas), _split(companies), page_size)
        )
    except DualbusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    Console().print(render_summary(summary))


async def _initial_sync(
    origin: Origin, areas: list[str] | None, companies: list[str] | None, page_size: int
) -> SyncSummary:
    settings = configured(f"dualbus-initial-sync-{origin.value}")
    options = load_producer_settings()
    async with open_context(origin, settings, options, areas=areas) as context:
        with RichProgress() as progress:
            return await run_initial_sync(
                context, companies=companies, page_size=page_size, progress=progress
            )


def register(app: typer.Typer) -> None:
    """Add ``produce`` and ``initial-sync`` to the CLI."""
    app.command("produce")(produce_command)
    app.command("initial-sync")(initial_sync_command)
