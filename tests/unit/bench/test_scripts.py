"""Every benchmark starts as the README runs it, ``python bench/<name>.py``, from the repository root."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("script", ["consumer.py", "emulator.py", "initial_sync.py", "outage.py", "live.py"])
def test_a_bench_script_imports_and_explains_itself(script: str) -> None:
    """``--help`` works: nothing in bench/ shadows a package the script imports (as sandbox.py once did)."""
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(_ROOT / "bench" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=_ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    assert "usage:" in completed.stdout


def test_no_bench_module_is_named_after_a_package() -> None:
    """A script's directory leads sys.path: a bench module named like a package would hide that package."""
    packages = {path.parent.name for path in _ROOT.glob("*/__init__.py")}
    assert not {path.stem for path in (_ROOT / "bench").glob("*.py")} & packages
