"""A session receiver's look lasts the wait it is given, not the SDK's read timeout rounded up."""

from __future__ import annotations

import dataclasses
import statistics
import time

import pytest

from dualbus.consumers._runtime import Consumer
from dualbus.shared.bus import async_bus_client
from dualbus.shared.bus_calls import complete, open_receiver, receive
from dualbus.shared.topology import Direction

from .conftest import TEST_OPTIONS, TOPOLOGY
from .samples import event

pytestmark = pytest.mark.integration

LOOK = TEST_OPTIONS.kept_look  # the runtime's look at a kept session


async def _empty_looks(pipeline, read_timeout: float, version: int) -> list[float]:
    """Seconds each of five empty looks at a session took, its receivers reading ``read_timeout`` at most."""
    pipeline.publish([event(pipeline.maps["currency"], "fo", 1, version=version)])
    topic = TOPOLOGY.topic("currency")
    options = dataclasses.replace(TEST_OPTIONS, session_wait=5.0, read_timeout=read_timeout)
    async with async_bus_client(pipeline.bus_settings) as client:
        consumer = Consumer(
            client,
            processor=None,  # only its receivers are used
            topic=topic,
            subscription=topic.subscription(Direction.TO_DATAVERSE),
            options=options,
        )
        receiver = consumer._receiver()
        await open_receiver(receiver)
        try:
            # The session's one message first, so that every look after it finds nothing.
            got = await receive(receiver, max_count=50, max_wait=5.0)
            assert len(got) == 1
            await complete(receiver, got)
            took = []
            for _ in range(5):
                started = time.monotonic()
                assert await receive(receiver, max_count=50, max_wait=LOOK) == []
                took.append(time.monotonic() - started)
            return took
        finally:
            await receiver.close()


@pytest.mark.asyncio
async def test_a_look_at_a_kept_session_lasts_its_wait_not_the_sdks_read_timeout(pipeline):
    """With the SDK's default read timeout (0.2 s) a look at a kept session took 0.2 s whatever its wait; the
    runtime's shorter one keeps a look, and the wait after a session's last message, to the time asked."""
    sdk_default = statistics.median(await _empty_looks(pipeline, read_timeout=0.2, version=1))
    runtime = statistics.median(
        await _empty_looks(pipeline, read_timeout=TEST_OPTIONS.read_timeout, version=2)
    )
    assert sdk_default >= 0.19  # rounded up to a whole read timeout
    assert runtime < sdk_default - 0.04, (runtime, sdk_default)
