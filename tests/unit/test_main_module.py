"""``python -m dualbus`` runs the command, and importing the module under another name runs none."""

from __future__ import annotations

import runpy
import subprocess
import sys


def test_importing_the_main_module_runs_no_command(capsys) -> None:
    runpy.run_module("dualbus.__main__", run_name="dualbus_main")  # a run would parse pytest's argv and exit
    assert capsys.readouterr() == ("", "")


def test_python_dash_m_dualbus_still_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dualbus", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "demo" in done.stdout
