"""The pipeline on loopback sockets: the Service Bus emulator, both twins, and a consumer run until done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

import pytest
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusSubQueue
from pydantic import SecretStr

from dualbus.consumers import ConsumerMetrics, MessageRetry, RuntimeOptions, run_consumer
from dualbus.sandbox.dataverse.limits import ServiceProtectionLimits
from dualbus.sandbox.dataverse.server import RunningDataverse, start_dataverse
from dualbus.sandbox.fo.server import FoHandle, start_fo
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.shared.bus import bus_client
from dualbus.shared.envelope import Envelope
from dualbus.shared.maps import MapSet, load_maps
from dualbus.shared.messages import to_message
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ServiceBusSettings, Settings
from dualbus.shared.topology import Direction, SubscriptionSpec, TopicSpec, Topology, default_topology
from tests.twin_settings import api_settings

CLIENT_ID = "dualbus"
SECRET = "dualbus-secret"
CLIENTS = {CLIENT_ID: SECRET, "workload": "workload-secret"}
LOCK = timedelta(seconds=5)


def fast_topology() -> Topology:
    """The default topology with the shortest lock Service Bus allows, so lock expiry shows within a test."""
    topics = []
    for topic in default_topology().topics:
        subscriptions = tuple(
            SubscriptionSpec(direction=s.direction, lock_duration=LOCK, max_delivery_count=3)
            for s in topic.subscriptions
        )
        topics.append(TopicSpec(area=topic.area, subscriptions=subscriptions))
    return Topology(topics=tuple(topics))


TOPOLOGY = fast_topology()
# A lookup to a missing row is dead-lettered at once here; test_late_lookups.py waits for one.
TEST_RETRY = MessageRetry(
    budget_seconds=60.0, initial_wait=0.05, max_wait=1.0, jitter=0.05, lookup_wait_seconds=0.0
)
TEST_OPTIONS = RuntimeOptions(concurrency=4, session_wait=0.5, idle_wait=0.3, shutdown_deadline=5.0)


class Pipeline:
    """Publishes events, runs consumers against the twins, and reads back dead letters."""

    def __init__(self, bus: EmulatorThread, dataverse: RunningDataverse, fo: FoHandle) -> None:
        self.bus = bus
        self.dataverse = dataverse
        self.fo = fo
        self.maps: MapSet = load_maps()
        self.bus_settings = ServiceBusSettings(connection_string=SecretStr(bus.connection_string))

    def settings(self, *, dataverse_url: str | None = None, fo_url: str | None = None) -> Settings:
        """Settings for a consumer of either direction; URLs may point at a proxy in front of a twin."""
        return Settings(
            servicebus=self.bus_settings,
            dataverse=api_settings(self.dataverse, client_id=CLIENT_ID, secret=SECRET, url=dataverse_url),
            fo=api_settings(self.fo, client_id=CLIENT_ID, secret=SECRET, url=fo_url),
        )

    def publish(self, events: Iterable[Envelope | ServiceBusMessage], *, area: str | None = None) -> int:
        """Send envelopes (or ready messages) to their area topics; returns how many were sent."""
        by_topic: dict[str, list[ServiceBusMessage]] = {}
        for item in events:
            message = to_message(item) if isinstance(item, Envelope) else item
            topic_area = item.area if isinstance(item, Envelope) else area
            by_topic.setdefault(TOPOLOGY.topic(str(topic_area)).name, []).append(message)
        with bus_client(self.bus_settings) as client:
            for topic, messages in by_topic.items():
                with client.get_topic_sender(topic) as sender:
                    for start in range(0, len(messages), 100):
                        sender.send_messages(messages[start : start + 100])
        return sum(len(messages) for messages in by_topic.values())

    async def consume(
        self,
        area: str,
        direction: Direction,
        until: Callable[[ConsumerMetrics], bool],
        *,
        within: float = 30.0,
        settings: Settings | None = None,
        maps: MapSet | None = None,
        retry: MessageRetry = TEST_RETRY,
        options: RuntimeOptions = TEST_OPTIONS,
        topology: Topology = TOPOLOGY,
        metrics: ConsumerMetrics | None = None,
    ) -> ConsumerMetrics:
        """Run a consumer until ``until(metrics)`` holds (or ``within`` seconds pass), then stop it; pass
        ``metrics`` to watch them while it runs."""
        stop = asyncio.Event()
        metrics = metrics or ConsumerMetrics(area=area, direction=direction.value)
        task = asyncio.create_task(
            run_consumer(
                settings or self.settings(),
                area,
                direction,
                stop=stop,
                topology=topology,
                maps=maps or self.maps,
                retry=retry,
                options=options,
                metrics=metrics,
            )
        )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and not task.done():
            if until(metrics):
                break
            await asyncio.sleep(0.05)
        stop.set()
        return await asyncio.wait_for(task, timeout=options.shutdown_deadline + 10)

    def dead_letters(self, area: str, direction: Direction) -> list[ServiceBusReceivedMessage]:
        """Every message in the subscription's dead-letter queue (peeked, left in place)."""
        topic = TOPOLOGY.topic(area)
        with (
            bus_client(self.bus_settings) as client,
            client.get_subscription_receiver(
                topic.name, direction.value, sub_queue=ServiceBusSubQueue.DEAD_LETTER
            ) as receiver,
        ):
            return list(receiver.peek_messages(max_message_count=500))


@pytest.fixture
def bus():
    with start_in_process(config=load_config(render_emulator_config(TOPOLOGY))) as handle:
        yield handle


@pytest.fixture
def dataverse_limits() -> ServiceProtectionLimits | None:
    return None


@pytest.fixture
def dataverse(dataverse_limits):
    with start_dataverse(clients=CLIENTS, limits=dataverse_limits) as twin:
        yield twin


@pytest.fixture
def fo():
    with start_fo(clients=CLIENTS) as twin:
        yield twin


@pytest.fixture
def pipeline(bus, dataverse, fo) -> Pipeline:
    return Pipeline(bus, dataverse, fo)
