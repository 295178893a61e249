"""The emulator benchmark still runs end to end and prints every figure it promises (its numbers are not
judged here: speed is measured by running the benchmark, never in a timed test)."""

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


def test_the_emulator_benchmark_prints_every_figure_with_its_rounds():
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(_ROOT / "bench" / "emulator.py"), "--messages", "300", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
        cwd=_ROOT,
    )
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
