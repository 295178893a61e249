"""A consumer replica killed with SIGKILL: its sessions go to the other replica within seconds.

The subscriptions keep the default 60-second lock here: the killed consumer's session locks must be freed
when its connection drops (as Azure does), not when they expire, for the other replica to drain its share
at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import start_in_process
from dualbus.shared.metrics_file import read_snapshot
from dualbus.shared.render import render_emulator_config
from dualbus.shared.topology import default_topology
from tests.twin_settings import api_environment, api_settings

from .conftest import CLIENT_ID, SECRET
from .samples import event

pytestmark = pytest.mark.integration

KEYS, VERSIONS = 40, 5
# Well under the 60-second lock: what a takeover on lock expiry could never meet.
DRAIN_LIMIT_SECONDS = 20.0


@pytest.fixture
def bus():
    """The emulator with the default topology, whose subscriptions lock sessions for 60 seconds."""
    topology = default_topology()
    assert all(s.lock_duration.total_seconds() >= 60 for t in topology.topics for s in t.subscriptions)
    with start_in_process(config=load_config(render_emulator_config(topology))) as handle:
        yield handle


def _start(pipeline, log: Path, metrics: Path) -> subprocess.Popen[bytes]:
    dataverse = pipeline.dataverse
    env = {
        **os.environ,
        "DUALBUS_SERVICEBUS__CONNECTION_STRING": pipeline.bus.connection_string,
        **api_environment("DATAVERSE", api_settings(dataverse, client_id=CLIENT_ID, secret=SECRET)),
        "DUALBUS_LOG_LEVEL": "WARNING",
        "OTEL_METRICS_EXPORTER": "jsonfile",
        "DUALBUS_METRICS_FILE": str(metrics),
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
    }
    command = [sys.executable, "-m", "dualbus.consumers", "currency", "--to", "dataverse", "--concurrency=4"]
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 - our own module, run by this interpreter
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _applied(metrics: Path) -> int:
    """Messages a consumer process reported applied so far (0 before its first export)."""
    if not metrics.exists():
        return 0
    points = read_snapshot(metrics).get("metrics", {}).get("dualbus.consumer.messages", [])
    return sum(int(p.get("value", 0)) for p in points if p["attributes"].get("outcome") == "applied")


async def _until(condition, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.asyncio
async def test_the_other_replica_drains_a_killed_replicas_sessions_within_seconds(pipeline, tmp_path):
    """Kill one of two replicas mid-stream: every record reaches its last version soon after, each once."""
    currency = pipeline.maps["currency"]
    events = [
        event(currency, "fo", n, version=v, label=f"v{v}-")
        for v in range(1, VERSIONS + 1)
        for n in range(KEYS)
    ]
    store = pipeline.dataverse.store
    killed = _start(pipeline, tmp_path / "a.log", tmp_path / "a.json")
    other = _start(pipeline, tmp_path / "b.log", tmp_path / "b.json")
    try:
        # Both replicas up and holding sessions before the messages come, so each takes a share.
        pipeline.publish(events[:KEYS])
        assert await _until(
            lambda: _applied(tmp_path / "a.json") > 0 and _applied(tmp_path / "b.json") > 0, 60.0
        )
        pipeline.publish(events[KEYS:])
        assert await _until(lambda: store.version >= len(events) // 2, 60.0)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        at_kill = time.monotonic()
        written_at_kill = store.version
        assert written_at_kill < len(events), "the kill came too late to leave work behind"

        def all_final() -> bool:
            rows = store.rows("transactioncurrencies")
            return len(rows) == KEYS and all(row.get("dualbus_sourceversion") == VERSIONS for row in rows)

        assert await _until(all_final, 60.0)
        drained = time.monotonic() - at_kill
    finally:
        for child in (killed, other):
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
    sys.stderr.write(f"drain after the kill: {drained:.2f} s ({len(events) - written_at_kill} writes left)\n")
    assert drained <= DRAIN_LIMIT_SECONDS
    # One write per change: what the killed replica applied but had not settled is found stale.
    assert store.version == len(events)
