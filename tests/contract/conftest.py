"""Emulators shared by the contract tests: one in-process emulator per test module, one entity per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceiver, ServiceBusSender

from dualbus.sandbox.servicebus.config import (
    CorrelationFilterConfig,
    EmulatorConfig,
    NamespaceConfig,
    QueueConfig,
    RuleConfig,
    SqlFilterConfig,
    SubscriptionConfig,
    TopicConfig,
)
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process

# Short locks and TTLs keep the expiry tests to a second or two.
_SHORT = timedelta(seconds=1)


def contract_config() -> EmulatorConfig:
    """Every entity the contract tests use, each behaviour on its own queue so tests stay independent."""
    plain = [
        "send-receive",
        "batch",
        "complete",
        "abandon",
        "dead-letter",
        "dead-letter-again",
        "defer",
        "renew",
        "rad",
        "peek",
        "schedule",
        "cancel",
        "size",
        "aio-basic",
        "aio-settle",
        "aio-batch",
        "props",
        "release",
        "message-ttl",
    ]
    queues = [QueueConfig(name=name, lock_duration=timedelta(seconds=30)) for name in plain]
    queues += [
        QueueConfig(name="max-delivery", max_delivery_count=2),
        QueueConfig(name="lock-expiry", lock_duration=_SHORT, max_delivery_count=5),
        QueueConfig(
            name="ttl-dlq", default_message_time_to_live=_SHORT, dead_lettering_on_message_expiration=True
        ),
        QueueConfig(name="ttl-drop", default_message_time_to_live=_SHORT),
        QueueConfig(
            name="dedup",
            requires_duplicate_detection=True,
            duplicate_detection_history_time_window=timedelta(minutes=1),
        ),
        QueueConfig(name="sessions", requires_session=True),
        QueueConfig(name="sessions-next", requires_session=True),
        QueueConfig(name="sessions-state", requires_session=True),
        QueueConfig(name="sessions-lock", requires_session=True),
        QueueConfig(name="aio-sessions", requires_session=True),
        QueueConfig(name="sessions-expiry", requires_session=True, lock_duration=_SHORT),
        QueueConfig(name="sessions-taken-over", requires_session=True, lock_duration=_SHORT),
        QueueConfig(name="sessions-batch", requires_session=True),
        QueueConfig(name="sessions-schedule", requires_session=True),
        QueueConfig(name="forward-target"),
        QueueConfig(name="forward-source", forward_to="forward-target"),
        QueueConfig(name="fan-in-target"),
        QueueConfig(
            name="dedup-schedule",
            requires_duplicate_detection=True,
            duplicate_detection_history_time_window=timedelta(minutes=1),
        ),
        QueueConfig(name="sessions-sequence", requires_session=True),
        QueueConfig(name="sessions-hand-over", requires_session=True),
        QueueConfig(name="ttl-forward-target", dead_lettering_on_message_expiration=True),
        QueueConfig(
            name="ttl-forward-source", default_message_time_to_live=_SHORT, forward_to="ttl-forward-target"
        ),
        QueueConfig(name="receiver-kind-sessions", requires_session=True),
        QueueConfig(name="receiver-kind-plain"),
    ]
    topic = TopicConfig(
        name="events",
        subscriptions=[
            SubscriptionConfig(name="all"),
            SubscriptionConfig(
                name="dead-letters", rules=[RuleConfig(name="dl", filter=CorrelationFilterConfig(label="dl"))]
            ),
            SubscriptionConfig(
                name="customers",
                rules=[RuleConfig(name="subject", filter=CorrelationFilterConfig(label="customer"))],
            ),
            SubscriptionConfig(
                name="big-orders",
                rules=[
                    RuleConfig(name="sql", filter=SqlFilterConfig(expression="amount > 100 AND area = 'eu'"))
                ],
            ),
        ],
    )
    stamping = TopicConfig(
        name="stamping",
        subscriptions=[
            SubscriptionConfig(
                name="stamped",
                rules=[
                    RuleConfig(
                        name="tag-eu",
                        filter=SqlFilterConfig(expression="area = 'eu'"),
                        action="SET region = 'emea'",
                    ),
                    RuleConfig(name="customers", filter=CorrelationFilterConfig(label="customer")),
                ],
            )
        ],
    )
    # Two subscriptions forwarding to one queue: each copy must arrive as a message of its own.
    fan_in = TopicConfig(
        name="fan-in",
        subscriptions=[
            SubscriptionConfig(name=name, forward_to="fan-in-target") for name in ("left", "right")
        ],
    )
    # The topic's one-second default TTL is the ceiling for its subscription's hour.
    ttl_ceiling = TopicConfig(
        name="ttl-ceiling",
        default_message_time_to_live=_SHORT,
        subscriptions=[SubscriptionConfig(name="long-lived", dead_lettering_on_message_expiration=True)],
    )
    session_split = TopicConfig(
        name="session-split",
        subscriptions=[
            SubscriptionConfig(name="sessions", requires_session=True),
            SubscriptionConfig(name="plain"),
        ],
    )
    # A session and a plain subscription for receivers of the wrong kind, each taking the messages whose
    # subject names it.
    receiver_kind = TopicConfig(
        name="receiver-kind",
        subscriptions=[
            SubscriptionConfig(
                name=name,
                requires_session=name == "sessions",
                rules=[RuleConfig(name="subject", filter=CorrelationFilterConfig(label=name))],
            )
            for name in ("sessions", "plain")
        ],
    )
    topics = [topic, stamping, fan_in, ttl_ceiling, session_split, receiver_kind]
    return EmulatorConfig(namespaces=[NamespaceConfig(name="sbemulatorns", queues=queues, topics=topics)])


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    """An in-process emulator (no persistence) with the contract entities."""
    with start_in_process(config=contract_config()) as handle:
        yield handle


class QuickCloseClient(ServiceBusClient):
    """A sync client whose senders and receivers start no keep-alive thread unless asked.

    The SDK does not pass the client's ``keep_alive`` on to the handlers it makes, so each one would
    start a thread that sleeps a second at a time and is joined on close: up to a second per close.
    (A receiver without prefetch still gets one: the SDK forces it.)
    """

    def get_queue_sender(self, queue_name: str, **kwargs: Any) -> ServiceBusSender:
        kwargs.setdefault("keep_alive", 0)
        return super().get_queue_sender(queue_name, **kwargs)

    def get_topic_sender(self, topic_name: str, **kwargs: Any) -> ServiceBusSender:
        kwargs.setdefault("keep_alive", 0)
        return super().get_topic_sender(topic_name, **kwargs)

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> ServiceBusReceiver:
        kwargs.setdefault("keep_alive", 0)
        return super().get_queue_receiver(queue_name, **kwargs)

    def get_subscription_receiver(
        self, topic_name: str, subscription_name: str, **kwargs: Any
    ) -> ServiceBusReceiver:
        kwargs.setdefault("keep_alive", 0)
        return super().get_subscription_receiver(topic_name, subscription_name, **kwargs)


def quick_client(connection_string: str, **kwargs: Any) -> QuickCloseClient:
    """A sync SDK client for ``connection_string`` whose handlers close at once."""
    kwargs.setdefault("keep_alive", 0)
    made = QuickCloseClient.from_connection_string(connection_string, **kwargs)
    assert isinstance(made, QuickCloseClient)  # the SDK builds ``cls``, typed as its base
    return made


@pytest.fixture
def client(emulator: EmulatorThread) -> Iterator[ServiceBusClient]:
    """A sync SDK client for the emulator."""
    with quick_client(emulator.connection_string) as sb:
        yield sb


class ShiftedClock:
    """Wall time plus an offset a test moves forward: the broker's clock, moved instead of waited for."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class MovedClock:
    """A client of an emulator of its own whose clock the test moves with ``pass_time``."""

    client: ServiceBusClient
    emulator: EmulatorThread
    clock: ShiftedClock

    def pass_time(self, seconds: float) -> None:
        """Move the broker's clock on and apply what falls due (lock and TTL expiry, schedules) at once."""
        self.clock.offset += seconds
        self.emulator.server.run_timers()


@pytest.fixture
def moved_clock() -> Iterator[MovedClock]:
    """An emulator of the contract entities whose clock only this test moves (the shared one keeps time)."""
    clock = ShiftedClock()
    with (
        start_in_process(config=contract_config(), clock=clock) as handle,
        quick_client(handle.connection_string) as sb,
    ):
        yield MovedClock(sb, handle, clock)
