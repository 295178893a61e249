"""A to-Dataverse consumer process knows its own Dataverse user before its first write.

Started fresh, its very first message is an F&O change made before F&O received a newer Dataverse edit of
the same record (base version 0). The concurrent-edit rule must hold it back (Dataverse wins), which it can
only do knowing that the Dataverse row's last modifier is not dualbus: the user id comes from WhoAmI, asked
at start, outside any $batch.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualbus.shared.metrics_file import read_snapshot
from dualbus.shared.topology import Direction
from tests.twin_settings import api_environment, api_settings

from .conftest import CLIENT_ID, SECRET
from .helpers import changes_of, target_row
from .samples import event
from .test_pipeline import _create_as_someone_else

pytestmark = pytest.mark.integration


def _outcomes(metrics: Path) -> dict[str, int]:
    if not metrics.exists():
        return {}
    points = read_snapshot(metrics).get("metrics", {}).get("dualbus.consumer.messages", [])
    return {str(p["attributes"].get("outcome")): int(p.get("value", 0)) for p in points}


async def _until(condition, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_a_fresh_consumers_first_message_keeps_the_newer_dataverse_edit(pipeline, tmp_path):
    """The first message a new process handles is an older F&O change: skipped as a conflict, row kept."""
    currency = pipeline.maps["currency"]
    from_dataverse = event(currency, "dataverse", 21, label="dv")
    from_fo = event(currency, "fo", 21, version=5, label="fo", base=0)
    await asyncio.to_thread(_create_as_someone_else, pipeline, "dataverse", from_dataverse)
    pipeline.publish([from_fo])
    dataverse, metrics = pipeline.dataverse, tmp_path / "metrics.json"
    env = {
        **os.environ,
        "DUALBUS_SERVICEBUS__CONNECTION_STRING": pipeline.bus.connection_string,
        **api_environment("DATAVERSE", api_settings(dataverse, client_id=CLIENT_ID, secret=SECRET)),
        "DUALBUS_LOG_LEVEL": "WARNING",
        "OTEL_METRICS_EXPORTER": "jsonfile",
        "DUALBUS_METRICS_FILE": str(metrics),
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
    }
    with (tmp_path / "consumer.log").open("wb") as log:
        child = subprocess.Popen(  # noqa: ASYNC220 - our own interpreter and module; started once
            [sys.executable, "-m", "dualbus.consumers", "currency", "--to", "dataverse"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await _until(lambda: sum(_outcomes(metrics).values()) > 0, within=60.0)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert _outcomes(metrics).get("skipped-conflict") == 1, _outcomes(metrics)
    [change] = changes_of(pipeline, from_fo, Direction.TO_DATAVERSE)
    assert target_row(pipeline, change, Direction.TO_DATAVERSE)["currencyname"] == "dv21"
