"""The emulator and consumer benchmarks still run end to end and print every figure they promise (their
numbers are not judged here: speed is measured by running the benchmarks, never in a timed test)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.contract

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_RATES = (
    "batched_send_msg_per_s",
    "batched_send_amqp_message_msg_per_s",
    "batched_send_prebuilt_msg_per_s",
    "peek_lock_receive_complete_msg_per_s",
    "receive_and_delete_msg_per_s",
)


def _run(script: str, *arguments: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``bench/<script>`` with this interpreter from the repository root; it must exit 0."""
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(_ROOT / "bench" / script), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        cwd=_ROOT,
    )


def test_the_emulator_benchmark_prints_every_figure_with_its_rounds():
    completed = _run("emulator.py", "--messages", "300", "--rounds", "1", timeout=100)
    figures = json.loads(completed.stdout)
    assert figures["messages"] == 300
    assert figures["persistence"] is True
    for rate in _RATES:
        assert figures[rate] > 0
        assert len(figures["rounds"][rate]) == 1
    assert set(figures["emulator_cpu_s_per_1000_msg"]) == {
        "send",
        "peek_lock_receive_complete",
        "receive_and_delete",
    }
    assert figures["sdk_build_us_per_msg"] > 0


def test_the_consumer_benchmark_runs_both_loops_and_reports_the_ratio_with_its_spread():
    """Both loops at once, every message settled by each, the ratio with its spread and agreement."""
    arguments = ("--events", "150", "--rounds", "1", "--warmup", "0", "--concurrency", "4")
    completed = _run("consumer.py", *arguments, timeout=110)
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
