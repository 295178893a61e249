"""The Python SDK's own published samples, run unmodified against the emulator (see sdk_samples/python)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE

pytestmark = pytest.mark.contract

_HERE = pathlib.Path(__file__).resolve().parent / "sdk_samples"
_SAMPLES = sorted((_HERE / "python").glob("*_samples/*.py"))
_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    """An emulator with the entities the samples name, from a Config.json as Microsoft's emulator takes."""
    with start_in_process(config=load_config(_HERE / "Config.json")) as handle:
        yield handle


def _environment(emulator: EmulatorThread) -> dict[str, str]:
    return {
        **os.environ,
        "SERVICEBUS_CONNECTION_STR": emulator.connection_string,
        "SERVICEBUS_FULLY_QUALIFIED_NAMESPACE": f"{emulator.host}:{emulator.port}",
        "SERVICEBUS_QUEUE_NAME": "samples-queue",
        "SERVICEBUS_SESSION_QUEUE_NAME": "samples-session-queue",
        "SERVICEBUS_TOPIC_NAME": "samples-topic",
        "SERVICEBUS_SUBSCRIPTION_NAME": "samples-subscription",
        "SERVICEBUS_SESSION_ID": "samples-session",
        "SERVICEBUS_SAS_POLICY": DEFAULT_KEY_NAME,
        "SERVICEBUS_SAS_KEY": DEFAULT_KEY_VALUE,
    }


def test_samples_are_present():
    """Both the sync and the async samples are vendored (a lost folder must not pass as zero tests)."""
    assert {path.parent.name for path in _SAMPLES} == {"sync_samples", "async_samples"}


@pytest.mark.parametrize("sample", _SAMPLES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_published_sample_runs_unmodified(emulator: EmulatorThread, sample: pathlib.Path, tmp_path):
    """The sample exits 0 against the emulator."""
    done = subprocess.run(  # noqa: S603 - a vendored sample, run by this interpreter
        [sys.executable, str(sample)],
        env=_environment(emulator),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{sample.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
