"""A target outage is waited out on one circuit: nothing dead-lettered, the backlog applied soon after.

The figures (first apply after the target's return, the backlog's drain time) are printed and recorded as
test properties, not asserted beyond the requirement of 5 seconds: timing on a loaded machine varies.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import pytest

from dualbus.consumers import ConsumerMetrics, MessageRetry
from dualbus.shared.topology import Direction

from .helpers import FlakyProxy, changes_of, target_row
from .samples import event

pytestmark = pytest.mark.integration

TO_DATAVERSE = Direction.TO_DATAVERSE
KEYS, VERSIONS = 40, 3
OUTAGE_SECONDS = 6.0
# Real backoff (0.5 s doubling up to 30 s), as deployed: without the circuit each message would wait its own.
RETRY = MessageRetry(budget_seconds=120.0)


class Watch:
    """Notes, from the consumer's counts, when applies resume after the target comes back."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.metrics = ConsumerMetrics(area="currency", direction=TO_DATAVERSE.value)
        self.recovered_at: float | None = None
        self.applied_at_recovery = 0
        self.first_apply: float | None = None
        self.done_at: float | None = None

    def count(self, outcome: str) -> int:
        """How many messages had ``outcome`` so far."""
        return self.metrics.counts[outcome]

    def recovered(self) -> None:
        """The target answers again from now on."""
        self.applied_at_recovery = self.count("applied")
        self.recovered_at = time.monotonic()

    def __call__(self, metrics: ConsumerMetrics) -> bool:
        self.metrics = metrics
        applied = metrics.counts["applied"]
        if self.recovered_at is not None and self.first_apply is None and applied > self.applied_at_recovery:
            self.first_apply = time.monotonic()
        if applied >= self.total and self.done_at is None:
            self.done_at = time.monotonic()
        return self.done_at is not None


async def _until(condition, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.02)
    assert condition()


@pytest.mark.asyncio
@pytest.mark.parametrize("failing_status", [None, 503], ids=["refusing", "answering-503"])
async def test_an_outage_is_waited_out_and_the_backlog_follows_at_once(
    pipeline, failing_status, record_property
):
    """After an outage nothing is dead-lettered, the first apply follows recovery within 5 s, all in order."""
    currency = pipeline.maps["currency"]
    proxy = FlakyProxy(urlsplit(pipeline.dataverse.url).port, failing_status=failing_status)
    settings = pipeline.settings(dataverse_url=await proxy.start())
    warm = [event(currency, "fo", n, version=1, label="w") for n in range(KEYS, KEYS + 4)]
    backlog = [
        event(currency, "fo", n, version=v, label=f"v{v}-")
        for v in range(1, VERSIONS + 1)
        for n in range(KEYS)
    ]
    watch = Watch(len(warm) + len(backlog))
    pipeline.publish(warm)
    consuming = asyncio.create_task(
        pipeline.consume("currency", TO_DATAVERSE, watch, settings=settings, retry=RETRY, within=90.0)
    )
    await _until(lambda: watch.count("applied") >= len(warm), within=30.0)
    proxy.down()
    pipeline.publish(backlog)
    await _until(lambda: watch.count("retried") > 0, within=30.0)
    await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself: the target stays down this long
    watch.recovered()
    proxy.up()
    metrics = await consuming
    await proxy.stop()

    assert metrics.counts["applied"] == len(warm) + len(backlog)
    assert metrics.counts["abandoned"] == metrics.counts["lock-lost"] == metrics.counts["dead-lettered"] == 0
    assert pipeline.dead_letters("currency", TO_DATAVERSE) == []
    # In order and once each: every version was applied (an older one after a newer would have been stale).
    assert metrics.counts["skipped-stale"] == 0
    for n in range(KEYS):
        [change] = changes_of(pipeline, event(currency, "fo", n, version=VERSIONS), TO_DATAVERSE)
        assert target_row(pipeline, change, TO_DATAVERSE)["dualbus_sourceversion"] == VERSIONS
    assert watch.recovered_at is not None
    assert watch.first_apply is not None
    assert watch.done_at is not None
    first_apply = watch.first_apply - watch.recovered_at
    drain = watch.done_at - watch.recovered_at
    record_property("first_apply_after_recovery_seconds", round(first_apply, 2))
    record_property("backlog_drain_seconds", round(drain, 2))
    print(f"outage ({failing_status or 'refused'}): first apply {first_apply:.2f} s, drained {drain:.2f} s")  # noqa: T201
    assert first_apply <= 5.0
