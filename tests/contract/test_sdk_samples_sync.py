"""The Python SDK's published sync samples, run unmodified against the emulator (see sdk_samples_run.py)."""

from __future__ import annotations

import pathlib

import pytest

from dualbus.sandbox.identity import IdentityServer
from dualbus.sandbox.servicebus.launcher import EmulatorThread
from tests.contract import sdk_samples_run
from tests.contract.sdk_samples_run import SAMPLES, run_sample, runnable, sample_id

pytestmark = pytest.mark.contract

# The module-scoped fixtures, one set for this module: an emulator of its own.
issuer = sdk_samples_run.issuer
identity = sdk_samples_run.identity
emulator = sdk_samples_run.emulator
trust = sdk_samples_run.trust


def test_samples_are_present():
    """All of the release's samples are vendored (a lost folder must not pass as zero tests)."""
    folders = [path.parent.name for path in SAMPLES]
    assert (folders.count("sync_samples"), folders.count("async_samples")) == (30, 28)


@pytest.mark.parametrize("sample", runnable("sync_samples"), ids=sample_id)
def test_published_sample_runs_unmodified(
    emulator: EmulatorThread, identity: IdentityServer, trust: pathlib.Path, sample: pathlib.Path, tmp_path
):
    """The sample exits 0 against the emulator."""
    run_sample(emulator, identity, trust, sample, tmp_path)
