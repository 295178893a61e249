"""A consumer killed with SIGKILL mid-batch loses nothing and applies nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from dualbus.shared.topology import Direction
from tests.twin_settings import api_environment, api_settings

from .conftest import CLIENT_ID, SECRET
from .helpers import changes_of, target_row
from .samples import event

pytestmark = pytest.mark.integration

KEYS, VERSIONS = 30, 4


def _consumer_env(pipeline) -> dict[str, str]:
    dataverse = pipeline.dataverse
    return {
        **os.environ,
        "DUALBUS_SERVICEBUS__CONNECTION_STRING": pipeline.bus.connection_string,
        **api_environment("DATAVERSE", api_settings(dataverse, client_id=CLIENT_ID, secret=SECRET)),
        "DUALBUS_LOG_LEVEL": "WARNING",
    }


async def _wait_for(condition, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.asyncio
async def test_sigkill_mid_batch_loses_nothing_and_applies_nothing_twice(pipeline, tmp_path):
    """After a SIGKILL and a restart, every record holds its last version and each change was written once."""
    currency = pipeline.maps["currency"]
    events = [
        event(currency, "fo", n, version=v, label=f"v{v}-")
        for v in range(1, VERSIONS + 1)
        for n in range(KEYS)
    ]
    pipeline.publish(events)
    store = pipeline.dataverse.store
    log = (tmp_path / "consumer.log").open("w")
    child = subprocess.Popen(  # noqa: ASYNC220 - our own interpreter and module; started once
        [sys.executable, "-m", "dualbus.consumers", "currency", "--to", "dataverse", "--concurrency", "4"],
        env=_consumer_env(pipeline),
        stdout=log,
        stderr=log,
    )
    try:
        assert await _wait_for(lambda: store.version >= len(events) // 4, within=60.0)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        log.close()
    written_before_restart = store.version
    assert written_before_restart < len(events), "the kill came too late to be mid-batch"

    def all_final(_metrics) -> bool:
        rows = store.rows("transactioncurrencies")
        return len(rows) == KEYS and all(row.get("dualbus_sourceversion") == VERSIONS for row in rows)

    await pipeline.consume("currency", Direction.TO_DATAVERSE, all_final, within=60.0)
    for n in range(KEYS):
        [change] = changes_of(pipeline, event(currency, "fo", n, version=VERSIONS), Direction.TO_DATAVERSE)
        row = target_row(pipeline, change, Direction.TO_DATAVERSE)
        assert row["dualbus_sourceversion"] == VERSIONS
        assert row["currencyname"].startswith(f"v{VERSIONS}-")
    # One write per change: a redelivered change the killed consumer had applied is skipped as stale.
    assert store.version == len(events)
    assert pipeline.dead_letters("currency", Direction.TO_DATAVERSE) == []


@pytest.mark.asyncio
async def test_sigterm_finishes_or_abandons_in_flight_work_and_exits_zero(pipeline, tmp_path):
    """SIGTERM mid-stream ends the consumer with status 0 in time; what it left is applied by the next one."""
    currency = pipeline.maps["currency"]
    events = [
        event(currency, "fo", n, version=v, label=f"v{v}-")
        for v in range(1, VERSIONS + 1)
        for n in range(KEYS)
    ]
    pipeline.publish(events)
    store = pipeline.dataverse.store
    with (tmp_path / "consumer.log").open("w") as log:
        child = subprocess.Popen(  # noqa: ASYNC220 - started once; the test waits on it below
            [sys.executable, "-m", "dualbus.consumers", "currency", "--to", "dataverse"],
            env=_consumer_env(pipeline),
            stdout=log,
            stderr=log,
        )
        try:
            assert await _wait_for(lambda: store.version >= len(events) // 4, within=60.0)
            child.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert await _wait_for(lambda: child.poll() is not None, within=30.0)
            assert child.returncode == 0
            assert time.monotonic() - started < 25.0  # the default shutdown deadline is 20 seconds
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)

    def all_final(_metrics) -> bool:
        rows = store.rows("transactioncurrencies")
        return len(rows) == KEYS and all(row.get("dualbus_sourceversion") == VERSIONS for row in rows)

    await pipeline.consume("currency", Direction.TO_DATAVERSE, all_final, within=60.0)
    assert all_final(None)
    assert store.version == len(events)


@pytest.mark.asyncio
async def test_sigterm_stops_an_idle_consumer_at_once(pipeline, tmp_path):
    """An idle consumer, its workers only waiting for a session, stops on SIGTERM within seconds."""
    with (tmp_path / "consumer.log").open("w") as log:
        child = subprocess.Popen(  # noqa: ASYNC220 - started once; the test waits on it below
            [sys.executable, "-m", "dualbus.consumers", "currency", "--to", "dataverse"],
            env=_consumer_env(pipeline),
            stdout=log,
            stderr=log,
        )
        try:
            # Started, and its workers waiting on the emulator for sessions that never come (its start-up
            # alone can take many seconds on a busy machine: a fixed pause would signal it too early).
            assert await _wait_for(lambda: bool(pipeline.bus.server.bus.sessions.waiters), within=90.0)
            assert child.poll() is None
            child.send_signal(signal.SIGTERM)
            started = time.monotonic()
            assert await _wait_for(lambda: child.poll() is not None, within=30.0)
            assert child.returncode == 0
            assert time.monotonic() - started < 8.0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
