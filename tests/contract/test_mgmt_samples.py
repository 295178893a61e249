"""The SDK's published administration samples (``mgmt_*``, sync and async), unmodified, against the emulator.

Each sample is its own process with the environment it documents; the sandbox CA that issued the emulator's
certificate is what the process trusts, since the samples verify TLS.
Sources: tests/contract/samples/mgmt/SOURCES.md.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, SubscriptionConfig, TopicConfig
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process

pytestmark = pytest.mark.contract

_SAMPLES = pathlib.Path(__file__).parent / "samples" / "mgmt"
_TOPIC, _SUBSCRIPTION = "samples-topic", "samples-subscription"
# Each sample makes a handful of HTTPS round trips; a minute is ample even on a loaded machine.
_SAMPLE_SECONDS = 60


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    """The topic and subscription the subscription and rule samples expect to exist."""
    config = EmulatorConfig(
        namespaces=[
            NamespaceConfig(
                name="sbemulatorns",
                topics=[TopicConfig(name=_TOPIC, subscriptions=[SubscriptionConfig(name=_SUBSCRIPTION)])],
            )
        ]
    )
    with start_in_process(config=config) as handle:
        yield handle


@pytest.mark.parametrize(
    "sample",
    sorted(str(path.relative_to(_SAMPLES)) for path in _SAMPLES.glob("*_samples/mgmt_*.py")),
)
def test_sample_runs_unmodified(sample: str, emulator: EmulatorThread, tmp_path: pathlib.Path) -> None:
    """The sample exits 0, having created, read, updated, listed and deleted what it manages."""
    certificate = tmp_path / "emulator.pem"
    certificate.write_bytes(emulator.server.admin.certificate_pem)
    env = {
        **os.environ,
        "SERVICE_BUS_CONNECTION_STR": emulator.connection_string,
        "SERVICE_BUS_TOPIC_NAME": _TOPIC,
        "SERVICE_BUS_SUBSCRIPTION_NAME": _SUBSCRIPTION,
        "REQUESTS_CA_BUNDLE": str(certificate),
        "SSL_CERT_FILE": str(certificate),
    }
    done = subprocess.run(  # noqa: S603 - this interpreter running a vendored sample
        [sys.executable, str(_SAMPLES / sample)],
        env=env,
        capture_output=True,
        text=True,
        timeout=_SAMPLE_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is created." in done.stdout
    assert "is deleted." in done.stdout
