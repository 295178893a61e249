"""SIGTERM stops ``dualbus demo`` and every process it started.

Apart from test_demo.py's finished run, so that the two run on different workers.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from dualbus.demo.launch import cli_command
from tests.integration.demo.test_demo import SHORT

pytestmark = pytest.mark.integration


def _children(demo: psutil.Process, *, at_least: int, within: float) -> list[psutil.Process]:
    """The demo's processes once there are ``at_least`` of them (they start one after another)."""
    deadline = time.monotonic() + within
    while len(children := demo.children(recursive=True)) < at_least:
        assert time.monotonic() < deadline, f"only {len(children)} processes after {within:g} s"
        time.sleep(0.1)
    return children


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
        children = _children(demo, at_least=10, within=30.0)
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
