"""The consumer benchmark still runs end to end: both loops at once, every message settled by each, and the
figures it promises (its numbers are not judged here: speed is measured by running the benchmark)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.contract

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_consumer_benchmark_runs_both_loops_and_reports_the_ratio_with_its_spread():
    command = [sys.executable, str(_ROOT / "bench" / "consumer.py"), "--events", "150", "--rounds", "1"]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [*command, "--warmup", "0", "--concurrency", "4"],
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
        cwd=_ROOT,
    )
    figures = json.loads(completed.stdout)
    assert figures["settled"] == {"bare": [150], "consumer": [150]}
    assert figures["consumer_outcomes"] == [{"applied": 150}]
    (round_figures,) = figures["rounds"]
    assert round_figures["bare_events_per_s"] > 0
    assert round_figures["consumer_events_per_s"] > 0
    assert set(figures["ratio"]) == {"median", "low", "high", "tolerance", "agree"}
    assert figures["rounds_agree"] is True  # one round agrees with itself
    assert figures["consumer_rss_mb"] > 0
    assert "agree" in completed.stderr
