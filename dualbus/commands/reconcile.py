"""``dualbus reconcile``: compare both systems record by record, report drift, optionally repair it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import orjson
import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from dualbus.commands.common import (
    console,
    error_console,
    known_areas,
    reported_errors,
    split_values,
    usage_error,
)
from dualbus.ops.reconcile import reconcile
from dualbus.ops.reconcile_print import print_report
from dualbus.shared.maps import Side

__all__ = ["EXIT_DRIFT", "register"]

# Distinct from 1 (an error) so that scripts can tell "could not check" from "checked, not in step".
EXIT_DRIFT = 3
_SIDES: dict[str, Side] = {"fo": "fo", "dataverse": "dataverse"}

AreasOption = Annotated[
    list[str] | None,
    typer.Option("--areas", "-a", help="Only these areas, e.g. customer,vendor (repeatable)."),
]
CompaniesOption = Annotated[
    list[str] | None,
    typer.Option("--companies", "-c", help="Only these legal entities, e.g. USMF,DEMF (repeatable)."),
]
RepairOption = Annotated[
    bool, typer.Option("--repair", help="Republish each drifted record's source state as a repair event.")
]
SourceOption = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Which side is the truth for two-way maps: fo (default) or dataverse. One-way maps keep theirs.",
    ),
]
OrphansOption = Annotated[
    bool,
    typer.Option(
        "--delete-orphans",
        help=(
            "With --repair: delete target records whose source record is gone (reported only, otherwise); "
            "on two-way maps only those dualbus wrote, never one made on the target side."
        ),
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the report as JSON, for scripts.")]


def reconcile_command(
    *,
    areas: AreasOption = None,
    companies: CompaniesOption = None,
    repair: RepairOption = False,
    source: SourceOption = None,
    delete_orphans: OrphansOption = False,
    as_json: JsonOption = False,
) -> None:
    """Compare F&O and Dataverse record by record and report drift per area and company.

    Reads both systems through their APIs, maps each F&O row with its table map and compares it with the
    Dataverse row of the same natural key: missing in F&O, missing in Dataverse, or differing fields.

    Exit code: 0 when both sides agree, 3 when drift was found (also with --repair: the consumers apply the
    repairs afterwards, so run again to confirm), 1 on an error.

    Example: dualbus reconcile --areas customer,vendor --companies USMF --repair
    """
    # The command line is checked before the settings are read or a system is asked anything.
    side = _side(source)
    if delete_orphans and not repair:
        raise usage_error("deleting orphans is a repair: add --repair", "--delete-orphans")
    with reported_errors():
        chosen_areas = known_areas(split_values(areas))
        with _progress(enabled=not as_json) as on_rows:
            report = reconcile(
                areas=chosen_areas,
                companies=split_values(companies),
                repair=repair,
                source=side,
                delete_orphans=delete_orphans,
                progress=on_rows,
            )
    if as_json:
        typer.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print_report(report, console)
    if report.has_drift:
        raise typer.Exit(code=EXIT_DRIFT)


def _side(value: str | None) -> Side | None:
    if value is None:
        return None
    if value not in _SIDES:
        raise usage_error(f"takes fo or dataverse, not {value!r}", "--source")
    return _SIDES[value]


@contextmanager
def _progress(*, enabled: bool) -> Iterator[_RowCounter | None]:
    if not enabled:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:>8,.0f} rows"),
        TimeElapsedColumn(),
    )
    # Progress goes to stderr: stdout carries only the report.
    with Progress(*columns, console=error_console, transient=True) as progress:
        yield _RowCounter(progress)


class _RowCounter:
    """Shows rows read per map and side as a reconcile goes."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[tuple[str, str], TaskID] = {}

    def __call__(self, map_name: str, side: Side, rows: int) -> None:
        task = self._tasks.get((map_name, side))
        if task is None:
            label = "F&O" if side == "fo" else "Dataverse"
            task = self._progress.add_task(f"{map_name}: {label}", total=None)
            self._tasks[map_name, side] = task
        self._progress.update(task, completed=rows)


def register(app: typer.Typer) -> None:
    """Add ``reconcile`` to the CLI."""
    app.command("reconcile")(reconcile_command)
