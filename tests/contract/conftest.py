"""Emulators shared by the contract tests: one in-process emulator per test module, one entity per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.servicebus import ServiceBusClient

from sandbox.servicebus.config import (
    CorrelationFilterConfig,
    EmulatorConfig,
    NamespaceConfig,
    QueueConfig,
    RuleConfig,
    SqlFilterConfig,
    SubscriptionConfig,
    TopicConfig,
)
from sandbox.servicebus.launcher import EmulatorThread, start_in_process

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
        QueueConfig(name="sessions-batch", requires_session=True),
        QueueConfig(name="forward-target"),
        QueueConfig(name="forward-source", forward_to="forward-target"),
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
    return EmulatorConfig(
        namespaces=[NamespaceConfig(name="sbemulatorns", queues=queues, topics=[topic, stamping])]
    )


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    """An in-process emulator (no persistence) with the contract entities."""
    with start_in_process(config=contract_config()) as handle:
        yield handle


@pytest.fixture
def client(emulator: EmulatorThread) -> Iterator[ServiceBusClient]:
    """A sync SDK client for the emulator."""
    # No keep-alive thread: closing a sender or receiver then returns at once instead of within a second.
    with ServiceBusClient.from_connection_string(emulator.connection_string, keep_alive=0) as sb:
        yield sb
