"""``dualbus demo`` end to end, headless and short, as a separate process like a person would run it."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from dualbus.demo.launch import cli_command

pytestmark = pytest.mark.integration

SHORT = ["--headless", "--duration", "10", "--customers", "50", "--vendors", "10", "--products", "20"]


class DemoRun:
    """One finished demo: its exit code, what it printed and its summary.json."""

    def __init__(self, run_dir: Path) -> None:
        result = subprocess.run(  # noqa: S603 - our own CLI
            cli_command("demo", *SHORT, "--run-dir", str(run_dir)),
            capture_output=True,
            text=True,
            timeout=170,
            check=False,
        )
        self.code = result.returncode
        self.output = result.stdout + result.stderr
        self.summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    return DemoRun(tmp_path_factory.mktemp("demo"))


@pytest.mark.timeout(200)
def test_demo_ends_in_step(demo: DemoRun) -> None:
    """The demo exits 0 and reconcile finds no drift other than records whose changes were dead-lettered."""
    assert demo.summary["verdict"]["unexplained_records"] == []
    assert demo.summary["verdict"]["ok"] is True
    assert demo.summary["exit_code"] == 0
    assert demo.code == 0, demo.output[-3000:]


@pytest.mark.timeout(200)
def test_changes_flowed_both_ways(demo: DemoRun) -> None:
    """Live changes were made on both sides and each direction applied some of them, then drained."""
    made = demo.summary["stream"]["made"]
    assert any(kind.startswith("fo.") for kind in made)
    assert any(kind.startswith("dataverse.") for kind in made)
    applied = {row["direction"]: 0 for row in demo.summary["routes"]}
    for row in demo.summary["routes"]:
        applied[row["direction"]] += row["applied"]
    assert applied["to-dataverse"] > 0
    assert applied["to-fo"] > 0
    assert demo.summary["drained"] is True


@pytest.mark.timeout(200)
def test_dead_letter_counts_agree(demo: DemoRun) -> None:
    """The dead-letter queues hold what the consumers counted, at least one per planted refusal."""
    from_queues = demo.summary["dead_letters"]["total"]
    from_metrics = sum(row["dead_lettered"] for row in demo.summary["routes"])
    assert from_queues == from_metrics
    assert from_queues >= demo.summary["expected_rejects"] > 0
    assert sum(group["count"] for group in demo.summary["dead_letters"]["groups"]) == from_queues


@pytest.mark.timeout(200)
def test_prints_the_commands_to_replay(demo: DemoRun) -> None:
    """The report tells the operator how to reach the bus and inspect and replay every dead-letter group."""
    assert "export DUALBUS_SERVICEBUS__CONNECTION_STRING=" in demo.output
    for group in demo.summary["dead_letters"]["groups"]:
        to = group["subscription"].removeprefix("to-")
        assert f"dualbus dlq replay --area {group['area']} --to {to}" in demo.output


@pytest.mark.timeout(120)
def test_sigterm_stops_every_process(tmp_path: Path) -> None:
    """SIGTERM during the run stops the demo and every process it started: nothing is left behind."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        cli_command("demo", *SHORT, "--run-dir", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    demo = psutil.Process(process.pid)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the consumers start once the emulator and twins are up
            if line.startswith("Started") and "consumers" in line:
                break
        time.sleep(2)
        children = demo.children(recursive=True)
        assert len(children) >= 10
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 130
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert (summary["exit_code"], summary["error"]) == (130, "interrupted")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
