"""The machine figures the benchmarks print beside their own: CPUs, load and the fixed work's best time."""

from __future__ import annotations

import os

from bench._machine import machine_figures


def test_the_figures_name_this_machine_and_a_positive_work_time() -> None:
    figures = machine_figures()
    assert figures["cpus"] == os.cpu_count()
    assert len(figures["load_average"]) == 3
    assert 0.0 < figures["python_work_ms"] < 10_000.0
