"""What the demo prints while it runs: the live table and the headless lines."""

from __future__ import annotations

from rich.console import Console

from dualbus.demo.display import format_seconds, headless_lines, latency_lines, stats_table
from dualbus.demo.stats import RouteStats


def _row() -> RouteStats:
    return RouteStats(
        "customer",
        "to-fo",
        published=12,
        skipped_echo=3,
        outcomes={"applied": 9, "dead-lettered": 2},
        latency_bounds=[0.1, 1.0],
        latency_buckets=[0, 9, 0],
    )


def test_latency_reads_in_ms_below_a_second() -> None:
    """Sub-second latencies show in milliseconds, longer ones in seconds, unknown ones as a dash."""
    assert format_seconds(0.25) == "250ms"
    assert format_seconds(2.5) == "2.5s"
    assert format_seconds(25.0) == "25s"
    assert format_seconds(None) == "-"
    assert format_seconds(float("inf")) == ">max"


def test_headless_lines_show_routes_with_traffic_only() -> None:
    """A line per route that saw messages, after a total line; idle routes are left out."""
    idle = RouteStats("product", "to-dataverse")
    lines = headless_lines("draining", 12.0, [_row(), idle])
    assert lines[0].endswith("draining: published 12, settled 11")
    assert len(lines) == 2
    assert "dead    2" in lines[1]
    assert "lag     1" in lines[1]
    # A real figure read off the buckets (half-way into the 0.1-1 s bucket), not a bucket's bound.
    assert "p50 550ms" in lines[1]


def test_table_has_a_row_per_route() -> None:
    """The live table lists every route with its figures, whole, in an 80-column terminal."""
    console = Console(width=80, record=True)
    console.print(stats_table([_row(), RouteStats("organisation", "to-dataverse")]))
    text = console.export_text()
    assert "customer     to-fo" in text
    assert "organisation to-dataverse" in text  # nothing cut short in 80 columns
    assert "dead" in text


def test_latency_lines_give_each_direction_its_quantiles() -> None:
    """The demo's closing figures: per direction p50/p95/p99 as read figures, and how many were applied."""
    to_dataverse = RouteStats(
        "customer", "to-dataverse", latency_bounds=[0.1, 1.0], latency_buckets=[0, 10, 0]
    )
    lines = latency_lines([_row(), to_dataverse])
    assert lines == [
        "Live changes to-dataverse, change → applied: p50 550ms  p95 955ms  p99 991ms  (10 applied)",
        "Live changes to-fo, change → applied: p50 550ms  p95 955ms  p99 991ms  (9 applied)",
    ]
