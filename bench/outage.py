"""How soon a consumer catches up after its target's outage: first apply and backlog drain after recovery.

Prints one JSON object per kind of outage (the Dataverse twin refusing connections, or answering 503): the
outage's length, the seconds from the target's return to the first apply and to the last change of the
backlog, the same backlog's drain time without an outage for comparison, and the dead letters (0 expected).
The emulator and the twins run in-process, through the integration tests' harness (a proxy in front of the
twin is switched off for the outage). Bounded: --outage seconds, --keys x --versions changes, waits capped.

Run from the repository root: python -m bench.outage [--outage 30] [--keys 40] [--versions 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import orjson

if __package__ in {None, ""}:  # run as a script: make the repository root (and its tests) importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dualbus.consumers import ConsumerMetrics, MessageRetry
from dualbus.sandbox.dataverse.server import start_dataverse
from dualbus.sandbox.fo.server import start_fo
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import start_in_process
from dualbus.shared.render import render_emulator_config
from dualbus.shared.topology import Direction
from tests.integration.consumers.conftest import CLIENTS, TOPOLOGY, Pipeline
from tests.integration.consumers.helpers import FlakyProxy
from tests.integration.consumers.samples import event

_TO_DATAVERSE = Direction.TO_DATAVERSE
_RETRY = MessageRetry(budget_seconds=300.0)  # the deployed backoff, with room for a long outage
_WAIT_LIMIT = 120.0


class _Clock:
    """Times applies from the consumer's counts, polled by the harness every 50 ms."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.metrics: ConsumerMetrics | None = None
        self.mark: float | None = None
        self.applied_at_mark = 0
        self.first: float | None = None
        self.done: float | None = None

    def applied(self) -> int:
        """Changes applied so far."""
        return self.metrics.counts["applied"] if self.metrics else 0

    def settled(self) -> int:
        """Changes settled for good so far: applied, or found already applied (after a retried write)."""
        if self.metrics is None:
            return 0
        return sum(self.metrics.counts[o] for o in ("applied", "unchanged", "skipped-stale", "dead-lettered"))

    def start(self) -> None:
        """Time from now: the backlog is published, or the target is back."""
        self.applied_at_mark, self.mark = self.applied(), time.monotonic()

    def __call__(self, metrics: ConsumerMetrics) -> bool:
        self.metrics = metrics
        if self.mark is not None and self.first is None and self.applied() > self.applied_at_mark:
            self.first = time.monotonic()
        if self.done is None and self.settled() >= self.total:
            self.done = time.monotonic()
        return self.done is not None


async def _until(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("a bench step did not finish in time")


async def _drain(pipeline: Pipeline, backlog: list, *, status: int | None, outage: float) -> _Clock:
    """Consume ``backlog``, published with the target down for ``outage`` seconds (0: no outage)."""
    clock = _Clock(len(backlog))
    proxy = FlakyProxy(urlsplit(pipeline.dataverse.url).port, failing_status=status)
    settings = pipeline.settings(dataverse_url=await proxy.start())
    run = asyncio.create_task(
        pipeline.consume(
            "currency", _TO_DATAVERSE, clock, settings=settings, retry=_RETRY, within=outage + _WAIT_LIMIT
        )
    )
    await _until(lambda: clock.metrics is not None, within=_WAIT_LIMIT)
    if outage:
        proxy.down()
    pipeline.publish(backlog)
    if outage:
        await _until(lambda: clock.metrics is not None and clock.metrics.counts["retried"] > 0, _WAIT_LIMIT)
        await asyncio.sleep(outage)  # the outage itself
        proxy.up()
    clock.start()
    await run
    await proxy.stop()
    return clock


async def _measure(args: argparse.Namespace, status: int | None) -> dict[str, object]:
    config = load_config(render_emulator_config(TOPOLOGY))
    with (
        start_in_process(config=config) as bus,
        start_dataverse(clients=CLIENTS, limits=None) as dataverse,
        start_fo(clients=CLIENTS) as fo,
    ):
        pipeline = Pipeline(bus, dataverse, fo)
        currency = pipeline.maps["currency"]

        def backlog(first_version: int) -> list:
            versions = range(first_version, first_version + args.versions)
            return [
                event(currency, "fo", n, version=v, label=f"v{v}-")
                for v in versions
                for n in range(args.keys)
            ]

        calm = await _drain(pipeline, backlog(1), status=status, outage=0.0)
        stormy = await _drain(pipeline, backlog(1 + args.versions), status=status, outage=args.outage)
        letters = pipeline.dead_letters("currency", _TO_DATAVERSE)
    return {
        "outage": "refused" if status is None else f"answering {status}",
        "outage_seconds": args.outage,
        "changes": args.keys * args.versions,
        "drain_without_outage_seconds": _since(calm.mark, calm.done),
        "first_apply_after_recovery_seconds": _since(stormy.mark, stormy.first),
        "drain_after_recovery_seconds": _since(stormy.mark, stormy.done),
        "outcomes_after_outage": dict(stormy.metrics.counts) if stormy.metrics else {},
        "dead_letters": len(letters),
    }


def _since(mark: float | None, then: float | None) -> float | None:
    """Seconds from ``mark`` to ``then``; None when either never came (the step did not finish)."""
    return None if mark is None or then is None else round(then - mark, 2)


def main() -> None:
    """Measure both kinds of outage and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--keys", type=int, default=40)
    parser.add_argument("--versions", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for status in (None, 503):
        print(orjson.dumps(asyncio.run(_measure(args, status))).decode())


if __name__ == "__main__":
    main()
