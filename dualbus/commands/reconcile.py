"""``dualbus reconcile``: compare both systems record by record, report drift, optionally repair it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from dualbus.commands.common import console, error_console, reported_errors
from dualbus.ops.reconcile import DriftKind, ReconcileReport, RecordDrift, reconcile
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import Side

__all__ = ["EXIT_DRIFT", "print_report", "register"]

# Distinct from 1 (an error) so that scripts can tell "could not check" from "checked, not in step".
EXIT_DRIFT = 3
_SHOWN_RECORDS = 50
_SIDES: dict[str, Side] = {"fo": "fo", "dataverse": "dataverse"}
_KIND_LABELS = {
    DriftKind.MISSING_IN_FO: "missing in F&O",
    DriftKind.MISSING_IN_DATAVERSE: "missing in Dataverse",
    DriftKind.DIFFERS: "differs",
}

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
        help="With --repair: delete target records whose source record is gone (reported only, otherwise).",
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
    with reported_errors():
        side = _side(source)
        with _progress(enabled=not as_json) as on_rows:
            report = reconcile(
                areas=_split(areas),
                companies=_split(companies),
                repair=repair,
                source=side,
                delete_orphans=delete_orphans,
                progress=on_rows,
            )
    if as_json:
        typer.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print_report(report)
    if report.has_drift:
        raise typer.Exit(code=EXIT_DRIFT)


def _side(value: str | None) -> Side | None:
    if value is None:
        return None
    if value not in _SIDES:
        raise ConfigError(f"--source takes fo or dataverse, not {value!r}")
    return _SIDES[value]


def _split(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated values as one list; None when none were given."""
    parts = [part.strip() for value in values or [] for part in value.split(",") if part.strip()]
    return parts or None


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


def print_report(report: ReconcileReport, out: Console | None = None, *, verdict: bool = True) -> None:
    """Print a report as the command does: summary per area and company, drifted records, what was sent.

    ``verdict=False`` leaves out the closing "No drift." / "Drift found.", for a caller that judges the
    drift itself (the demo excuses drift that a rightly dead-lettered change explains).
    """
    out = out or console
    out.print(_summary_table(report))
    if report.drifts:
        out.print(_records_table(report.drifts[:_SHOWN_RECORDS]))
    hidden = len(report.drifts) - _SHOWN_RECORDS + report.unlisted
    if hidden > 0:
        out.print(f"… and {hidden} more drifted records (--json lists them).")
    for problem in report.problems[:_SHOWN_RECORDS]:
        out.print(
            f"[yellow]cannot map[/yellow] {problem.map_name} {problem.side} {problem.row}: {problem.message}"
        )
    if report.repairs_published or report.deletes_published:
        out.print(
            f"Published {report.repairs_published} repairs and {report.deletes_published} deletes "
            f"(run {report.run_id}); the consumers apply them."
        )
    if report.orphans_kept:
        out.print(f"{report.orphans_kept} records exist only on their target side and were left in place.")
    if verdict:
        out.print("[green]No drift.[/green]" if not report.has_drift else "[red]Drift found.[/red]")


def _summary_table(report: ReconcileReport) -> Table:
    table = Table(title=f"Reconcile {report.run_id}")
    for column in (
        "area",
        "company",
        "compared",
        "missing in F&O",
        "missing in Dataverse",
        "differing",
        "unmappable",
    ):
        table.add_column(column, justify="left" if column in {"area", "company"} else "right")
    for s in report.summaries:
        counts = (s.compared, s.missing_in_fo, s.missing_in_dataverse, s.differing, s.problems)
        table.add_row(s.area, s.company or "-", *(f"{n:,}" for n in counts))
    return table


def _records_table(drifts: list[RecordDrift]) -> Table:
    table = Table(title="Drifted records")
    for column in ("map", "company", "key", "drift", "F&O value ≠ Dataverse value"):
        table.add_column(column)
    for drift in drifts:
        key = " / ".join(str(value) for value in drift.key.values())
        fields = "; ".join(f"{f.field}: {f.fo!r} ≠ {f.dataverse!r}" for f in drift.fields)
        table.add_row(drift.map_name, drift.company or "-", key, _KIND_LABELS[drift.kind], fields)
    return table


def register(app: typer.Typer) -> None:
    """Add ``reconcile`` to the CLI."""
    app.command("reconcile")(reconcile_command)
