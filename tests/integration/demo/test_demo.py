"""``dualbus demo`` end to end, headless and short, as a separate process like a person would run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dualbus.demo.launch import cli_command

# ``long``: the one demo run takes a couple of minutes; its file is handed out first (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.long]

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
