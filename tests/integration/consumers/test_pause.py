"""An operator's pause stops a route from applying anything; a resume catches up in order."""

from __future__ import annotations

import pytest

from dualbus.shared.bus import bus_client
from dualbus.shared.control import route_name, send_command
from dualbus.shared.topology import Direction

from .conftest import TOPOLOGY
from .samples import event

pytestmark = pytest.mark.integration


def _command(pipeline, *, paused: bool) -> None:
    with bus_client(pipeline.bus_settings) as client:
        send_command(
            client,
            TOPOLOGY.control_queue,
            route=route_name("currency", Direction.TO_DATAVERSE.value),
            paused=paused,
            by="operator",
        )


@pytest.mark.asyncio
async def test_a_paused_route_applies_nothing_until_resumed(pipeline):
    """While paused nothing is applied; after a resume every waiting change lands."""
    _command(pipeline, paused=True)
    currency = pipeline.maps["currency"]
    pipeline.publish([event(currency, "fo", n, version=1) for n in range(3)])
    paused = await pipeline.consume("currency", Direction.TO_DATAVERSE, lambda _m: False, within=2.0)
    assert sum(paused.counts.values()) == 0
    assert pipeline.dataverse.store.rows("transactioncurrencies") == []
    _command(pipeline, paused=False)
    resumed = await pipeline.consume("currency", Direction.TO_DATAVERSE, lambda m: m.counts["applied"] >= 3)
    assert resumed.counts["applied"] == 3
