"""A reconcile report for people: summary per area and company, drifted records, what was republished.

Shared by ``dualbus reconcile`` and the demo's closing report, so both show drift the same way.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dualbus.ops.reconcile import DriftKind, ReconcileReport, RecordDrift

__all__ = ["print_report"]

_SHOWN_RECORDS = 50
_KIND_LABELS = {
    DriftKind.MISSING_IN_FO: "missing in F&O",
    DriftKind.MISSING_IN_DATAVERSE: "missing in Dataverse",
    DriftKind.DIFFERS: "differs",
}


def print_report(report: ReconcileReport, out: Console, *, verdict: bool = True) -> None:
    """Print a report as ``dualbus reconcile`` does: per area and company, drifted records, what was sent.

    ``verdict=False`` leaves out the closing "No drift." / "Drift found.", for a caller that judges the
    drift itself (the demo excuses drift that a rightly dead-lettered change explains).
    """
    out.print(_summary_table(report))
    if report.drifts:
        out.print(_records_table(report.drifts[:_SHOWN_RECORDS]))
    hidden = len(report.drifts) - _SHOWN_RECORDS + report.unlisted
    if hidden > 0:
        out.print(f"… and {hidden} more drifted records (--json lists them).")
    for problem in report.problems[:_SHOWN_RECORDS]:
        line = f" {problem.map_name} {problem.side} {problem.row}: {problem.message}"
        out.print(Text.assemble(("cannot map", "yellow"), line))
    if report.repairs_published or report.deletes_published:
        out.print(
            f"Published {report.repairs_published} repairs and {report.deletes_published} deletes "
            f"(run {report.run_id}); the consumers apply them."
        )
    if report.orphans_kept:
        out.print(f"{report.orphans_kept} records exist only on their target side and were left in place.")
    if report.orphans_never_synced:
        out.print(
            f"{report.orphans_never_synced} of them dualbus never wrote: made on that side of a two-way map, "
            "perhaps not yet synced to the other, they are never deleted (not with --delete-orphans either)."
        )
    if verdict:
        out.print(Text("Drift found.", "red") if report.has_drift else Text("No drift.", "green"))


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
        table.add_row(s.area, Text(s.company or "-"), *(f"{n:,}" for n in counts))
    return table


def _records_table(drifts: list[RecordDrift]) -> Table:
    table = Table(title="Drifted records")
    for column in ("map", "company", "key", "drift", "F&O value ≠ Dataverse value"):
        table.add_column(column)
    for drift in drifts:
        key = " / ".join(str(value) for value in drift.key.values())
        fields = "; ".join(f"{f.field}: {f.fo!r} ≠ {f.dataverse!r}" for f in drift.fields)
        # Text cells: a company, key or value is the systems' text, never rich markup ("Contoso [/EU]").
        cells = (Text(drift.company or "-"), Text(key), _KIND_LABELS[drift.kind], Text(fields))
        table.add_row(drift.map_name, *cells)
    return table
