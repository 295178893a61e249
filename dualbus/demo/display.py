"""How the demo shows progress: a rich table per area and direction, or plain lines for CI and logs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dualbus.demo.stats import RouteStats, latency_by_direction

__all__ = ["format_seconds", "headless_lines", "latency_lines", "live_view", "stats_table"]

_WHOLE_SECONDS = 10


def format_seconds(value: float | None) -> str:
    """A latency for a person: ``-`` when unknown, milliseconds below a second (``240ms``, ``1.3s``)."""
    if value is None:
        return "-"
    if math.isinf(value):
        return ">max"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return f"{value:.1f}s" if value < _WHOLE_SECONDS else f"{value:.0f}s"


def stats_table(stats: Sequence[RouteStats], *, title: str = "") -> Table:
    """One row per area and direction, with the figures an operator watches."""
    # Narrow enough for an 80-column terminal: light borders, the box's one space between columns.
    table = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    for header in ("area", "direction"):
        table.add_column(header, no_wrap=True)
    for header in ("published", "applied", "stale", "echo", "dead", "lag", "p50", "p99"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in stats:
        table.add_row(
            row.area,
            row.direction,
            str(row.published),
            str(row.applied),
            str(row.skipped_stale),
            str(row.skipped_echo),
            Text(str(row.dead_lettered), style="yellow" if row.dead_lettered else ""),
            str(row.lag),
            format_seconds(row.latency(0.5)),
            format_seconds(row.latency(0.99)),
        )
    return table


def live_view(phase: str, elapsed: float, stats: Sequence[RouteStats], note: str = "") -> RenderableType:
    """The whole live display: what the demo is doing, for how long, and the table."""
    header = Text.assemble((f"{phase}", "bold"), f"  {elapsed:5.1f} s", f"  {note}" if note else "")
    return Group(header, stats_table(stats))


def headless_lines(phase: str, elapsed: float, stats: Sequence[RouteStats]) -> list[str]:
    """Plain lines: one summary line, then one per route that has seen traffic."""
    total_published = sum(s.published for s in stats)
    total_settled = sum(s.settled for s in stats)
    lines = [f"[{elapsed:6.1f}s] {phase}: published {total_published}, settled {total_settled}"]
    lines.extend(_line(row) for row in stats if row.published or row.settled)
    return lines


def _line(row: RouteStats) -> str:
    return (
        f"  {row.area:<12} {row.direction:<12} published {row.published:>5}"
        f" applied {row.applied:>5} stale {row.skipped_stale:>4} echo {row.skipped_echo:>5}"
        f" dead {row.dead_lettered:>4} lag {row.lag:>5}"
        f" p50 {format_seconds(row.latency(0.5))} p99 {format_seconds(row.latency(0.99))}"
    )


def latency_lines(stats: Sequence[RouteStats]) -> list[str]:
    """Per direction, the live changes' p50/p95/p99 from the source's change to the target's write."""
    lines = []
    for direction, figures in latency_by_direction(stats).items():
        quantiles = "  ".join(
            f"{name} {format_seconds(figures[f'{name}_seconds'])}" for name in ("p50", "p95", "p99")
        )
        lines.append(
            f"Live changes {direction}, change → applied: {quantiles}  ({figures['applied']} applied)"
        )
    return lines
