"""An initial sync's batch messages through the real consumer: good changes applied, a bad one named.

Real emulator, real SDK, the Dataverse twin: batches of customer changes (``shared.message_batches``) go
to the customer topic, one change of one batch with a field no map reads. Every other change lands; the
batch holding the bad one is dead-lettered once, with that change's reason code and a description naming
it, and the consumer goes on.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from dualbus.consumers import ConsumerMetrics, run_consumer
from dualbus.ops.dlq import peek_dead_letters, select_routes
from dualbus.producers.publisher import bucket_batches
from dualbus.shared.bus import bus_client
from dualbus.shared.message_batches import to_batch_message
from dualbus.shared.topology import Direction

from .conftest import TEST_OPTIONS, TEST_RETRY, TOPOLOGY, Pipeline
from .helpers import changes_of, seed, target_row
from .samples import event

pytestmark = pytest.mark.integration

TOPIC = TOPOLOGY.topic("customer")
SETTLE_WITHIN = 90.0


@pytest.mark.asyncio
@pytest.mark.timeout(240)
async def test_a_batch_applies_its_good_changes_and_dead_letters_naming_the_bad_one(
    pipeline: Pipeline,
) -> None:
    await seed(pipeline, Direction.TO_DATAVERSE)
    customers = pipeline.maps["customers"]
    changes = [event(customers, "fo", n, label="batch") for n in range(1, 81)]
    unspoilt = changes[7]
    changes[7] = changes[7].model_copy(update={"data": {**changes[7].data, "NoSuchField": 1}})
    groups = bucket_batches(changes, TOPIC.ordering_buckets)
    assert any(len(group) > 1 for group in groups)
    pipeline.publish([to_batch_message(g, buckets=TOPIC.ordering_buckets) for g in groups], area="customer")
    metrics = ConsumerMetrics(area="customer", direction=Direction.TO_DATAVERSE.value)
    stop = asyncio.Event()
    consumer = asyncio.create_task(
        run_consumer(
            pipeline.settings(),
            "customer",
            Direction.TO_DATAVERSE,
            stop=stop,
            topology=TOPOLOGY,
            maps=pipeline.maps,
            retry=TEST_RETRY,
            options=TEST_OPTIONS,
            metrics=metrics,
        )
    )
    bad_group = next(group for group in groups if changes[7] in group)
    deadline = time.monotonic() + SETTLE_WITHIN
    while time.monotonic() < deadline and not consumer.done():
        if metrics.counts["applied"] >= len(changes) - len(bad_group) and metrics.counts["dead-lettered"]:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(consumer, TEST_OPTIONS.shutdown_deadline + 10)
    # Each change of a completed batch counts; the dead-lettered batch counts once.
    assert metrics.counts["applied"] == len(changes) - len(bad_group)
    assert metrics.counts["dead-lettered"] == 1
    assert metrics.counts["retried"] == 0
    # Every good change landed, those of the bad one's batch too; the bad one did not.
    for change in [*changes[:7], unspoilt, *changes[8:]]:
        rows = [
            target_row(pipeline, c, Direction.TO_DATAVERSE)
            for c in changes_of(pipeline, change, Direction.TO_DATAVERSE)
        ]
        assert all(row is None for row in rows) if change is unspoilt else all(rows), change.key
    with bus_client(pipeline.bus_settings) as client:
        (route,) = [
            r for r in select_routes(TOPOLOGY, frozenset({"customer"})) if r.subscription == "to-dataverse"
        ]
        (letter,) = peek_dead_letters(client, route)
    assert letter.reason == "UnknownField"
    assert letter.description.startswith(
        f"1 of {len(bad_group)} changes could not be applied (the others were)"
    )
    assert changes[7].id in letter.description
    assert "NoSuchField" in letter.description
