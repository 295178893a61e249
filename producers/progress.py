"""The initial sync's rich progress bar (records, rate, ETA) and its closing summary table."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from dualbus.producers.initial_sync import SyncSummary

__all__ = ["RichProgress", "render_summary"]


class _RateColumn(ProgressColumn):
    """Records per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        """The current rate, blank until rich has an estimate."""
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rec/s", style="progress.data.speed")


class RichProgress:
    """A progress bar on the console's stderr: what is being read, records done of total, rate, ETA."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
        )
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        """Show the bar for ``total`` records."""
        self._task = self._progress.add_task("initial sync", total=total or None)

    def advance(self, records: int, label: str) -> None:
        """Move the bar on and say which table and company are being read."""
        if self._task is not None:
            self._progress.update(self._task, advance=records, description=label)

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()


def render_summary(summary: SyncSummary) -> Table:
    """A table of what the run published, per area, table and company, with the totals."""
    table = Table(title=f"initial sync from {summary.origin.value}")
    for column in ("area", "table", "company", "records", "pages", "resumed"):
        table.add_column(column, justify="right" if column in ("records", "pages") else "left")
    for result in summary.results:
        table.add_row(
            result.area,
            result.table,
            result.company,
            f"{result.records:,}",
            str(result.pages),
            "yes" if result.resumed else "",
        )
    table.add_section()
    table.add_row(
        "total", "", "", f"{summary.records:,}", "", f"{summary.seconds:.1f}s, {summary.rate:,.0f} rec/s"
    )
    return table
