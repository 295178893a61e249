"""A corpus of malformed messages among valid ones: every malformed one is dead-lettered with its reason.

Real emulator, real SDK, both twins: the customer topic's two consumers and the drain of its unroutable
subscription run side by side, as ``dualbus consume`` runs them. Nothing malformed is applied, nothing is
dropped in silence, every valid change lands, and the consumers are still working afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import MessageSizeExceededError

from dualbus.consumers import ConsumerMetrics, UnroutableDrain, run_consumer
from dualbus.ops.dlq import peek_dead_letters, select_routes
from dualbus.ops.status import collect_status
from dualbus.shared.bus import async_bus_client, bus_client
from dualbus.shared.bus_admin import admin_counts
from dualbus.shared.envelope import Envelope
from dualbus.shared.messages import to_message
from dualbus.shared.topology import Direction

from .conftest import TEST_OPTIONS, TEST_RETRY, TOPOLOGY, Pipeline
from .corpus import CASE_PROPERTY, Case, malformed
from .helpers import changes_of, seed, target_row
from .samples import event

pytestmark = pytest.mark.integration

TOPIC = TOPOLOGY.topic("customer")
DIRECTIONS = (Direction.TO_DATAVERSE, Direction.TO_FO)
SETTLE_WITHIN = 120.0


class Run:
    """Both consumers of the customer topic and its unroutable drain, until stopped."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.stop = asyncio.Event()
        self.metrics = {d: ConsumerMetrics(area="customer", direction=d.value) for d in DIRECTIONS}
        self.tasks: list[asyncio.Task[object]] = []
        self.drain: UnroutableDrain | None = None

    async def __aenter__(self) -> Run:
        for direction in DIRECTIONS:
            consumer = run_consumer(
                self.pipeline.settings(),
                "customer",
                direction,
                stop=self.stop,
                topology=TOPOLOGY,
                maps=self.pipeline.maps,
                retry=TEST_RETRY,
                options=TEST_OPTIONS,
                metrics=self.metrics[direction],
            )
            self.tasks.append(asyncio.create_task(consumer))
        self.tasks.append(asyncio.create_task(self._drain()))
        return self

    async def _drain(self) -> None:
        async with async_bus_client(self.pipeline.bus_settings) as client:
            self.drain = UnroutableDrain(client, TOPIC, wait=0.3)
            await self.drain.run(self.stop)

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout=TEST_OPTIONS.shutdown_deadline + 10)

    def count(self, outcome: str) -> int:
        """An outcome summed over both consumers (the drain's dead letters included)."""
        drained = self.drain.dead_lettered if self.drain is not None and outcome == "dead-lettered" else 0
        return sum(m.counts[outcome] for m in self.metrics.values()) + drained

    async def until(self, applied: dict[Direction, int], dead_lettered: int) -> None:
        """Wait, bounded, until each direction applied ``applied`` and ``dead_lettered`` are dead-lettered."""
        deadline = time.monotonic() + SETTLE_WITHIN
        while time.monotonic() < deadline and not any(task.done() for task in self.tasks):
            done = all(self.metrics[d].counts["applied"] >= n for d, n in applied.items())
            if done and self.count("dead-lettered") >= dead_lettered:
                return
            await asyncio.sleep(0.05)

    @property
    def alive(self) -> bool:
        """Whether every consumer and the drain still run."""
        return not any(task.done() for task in self.tasks)


def _valid(pipeline: Pipeline) -> dict[Direction, list[Envelope]]:
    customers = pipeline.maps["customers"]
    return {
        Direction.TO_DATAVERSE: [event(customers, "fo", n, label="ok") for n in range(1, 41)],
        Direction.TO_FO: [event(customers, "dataverse", n, label="ok") for n in range(100, 120)],
    }


def _interleaved(valid: dict[Direction, list[Envelope]], cases: list[Case]) -> list[ServiceBusMessage]:
    good = [to_message(e) for e in itertools.chain.from_iterable(itertools.zip_longest(*valid.values())) if e]
    bad = [c.message for c in cases]
    stride = max(1, len(bad) // len(good))
    mixed: list[ServiceBusMessage] = []
    for index, message in enumerate(good):
        mixed.append(message)
        mixed.extend(bad[index * stride : (index + 1) * stride])
    mixed.extend(bad[len(good) * stride :])
    return mixed


def _dead_letters(pipeline: Pipeline) -> dict[str, tuple[str, str, str]]:
    """Every dead letter of the topic by its corpus case: (subscription, reason, description)."""
    found: dict[str, tuple[str, str, str]] = {}
    with bus_client(pipeline.bus_settings) as client:
        for route in select_routes(TOPOLOGY, frozenset({"customer"})):
            for letter in peek_dead_letters(client, route):
                case = str(letter.properties.get(CASE_PROPERTY, f"(no case) {letter.message_id}"))
                assert case not in found, f"{case} was dead-lettered twice"
                found[case] = (route.subscription, letter.reason, letter.description)
    return found


@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_every_malformed_message_is_dead_lettered_with_its_reason(pipeline):
    """100% of the corpus is dead-lettered where and as expected; every valid change is applied."""
    for direction in DIRECTIONS:
        await seed(pipeline, direction)
    valid = _valid(pipeline)
    cases = malformed(pipeline.maps, valid[Direction.TO_DATAVERSE])
    # Sent again under a valid event's message id: duplicate detection absorbs it, whatever its body.
    _send(pipeline, [*_interleaved(valid, cases), _same_id(valid[Direction.TO_DATAVERSE][1])])
    async with Run(pipeline) as run:
        await run.until({d: len(events) for d, events in valid.items()}, len(cases))
        late = {Direction.TO_DATAVERSE: event(pipeline.maps["customers"], "fo", 41, label="late")}
        late[Direction.TO_FO] = event(pipeline.maps["customers"], "dataverse", 120, label="late")
        pipeline.publish(late.values())
        await run.until({d: len(events) + 1 for d, events in valid.items()}, len(cases))
        assert run.alive, "a consumer or the drain stopped"
    letters = _dead_letters(pipeline)
    expected = {case.name: (case.subscription, case.reason) for case in cases}
    assert {name: letter[:2] for name, letter in letters.items()} == expected
    assert all(description for _, _, description in letters.values())
    assert run.count("retried") == 0
    for direction, events in valid.items():
        assert run.metrics[direction].counts["applied"] == len(events) + 1
        for sample in [*events, late[direction]]:
            for change in changes_of(pipeline, sample, direction):
                assert target_row(pipeline, change, direction) is not None, change.key
    _nothing_left_and_shown(pipeline, Counter(reason for _, reason in expected.values()))


def _send(pipeline: Pipeline, messages: list[ServiceBusMessage]) -> None:
    """Send in order, in batches as large as Service Bus takes (some corpus bodies are 200 KB)."""
    with bus_client(pipeline.bus_settings) as client, client.get_topic_sender(TOPIC.name) as sender:
        batch = sender.create_message_batch()
        for message in messages:
            try:
                batch.add_message(message)
            except MessageSizeExceededError:
                sender.send_messages(batch)
                batch = sender.create_message_batch()
                batch.add_message(message)
        sender.send_messages(batch)


def _same_id(original: Envelope) -> ServiceBusMessage:
    sent = to_message(original)
    return ServiceBusMessage(
        b"not even json",
        message_id=sent.message_id,
        session_id=sent.session_id,
        application_properties=sent.application_properties,
    )


def _nothing_left_and_shown(pipeline: Pipeline, reasons: Counter[str]) -> None:
    """No subscription holds an active message; status counts the dead letters, the catch-all's too."""
    with admin_counts(pipeline.bus_settings) as counts:
        statuses = {
            s.subscription: s for s in collect_status(counts, TOPOLOGY, now=_now()) if s.area == "customer"
        }
    assert {name: s.active for name, s in statuses.items()} == {
        "to-dataverse": 0,
        "to-fo": 0,
        "unroutable": 0,
    }
    assert sum(s.dead_lettered for s in statuses.values()) == sum(reasons.values())
    assert statuses["unroutable"].dead_lettered == reasons["Unroutable"]


def _now():
    from datetime import UTC, datetime  # noqa: PLC0415 - only the status check needs it

    return datetime.now(UTC)
