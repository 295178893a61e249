"""The deployables the topology implies: one producer per source system, one consumer per route.

Names follow Azure Container Apps' rule (lower-case letters, digits and hyphens, at most 32 characters,
starting with a letter), which is stricter than Kubernetes' 63-character DNS labels, so one name serves
both: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftapp
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from dualbus.shared.envelope import Origin
from dualbus.shared.errors import TopologyError
from dualbus.shared.topology import SubscriptionSpec, TopicSpec, Topology

__all__ = [
    "APP_PREFIX",
    "MAX_REPLICAS",
    "MESSAGES_PER_REPLICA",
    "SCALE_RULE_TYPE",
    "ConsumerApp",
    "ProducerApp",
    "consumer_apps",
    "producer_apps",
]

APP_PREFIX = "dualbus"
# KEDA's scaler for Service Bus queues and topic subscriptions: https://keda.sh/docs/latest/scalers/azure-service-bus/
SCALE_RULE_TYPE = "azure-servicebus"
# Active messages one replica is expected to work through before KEDA adds another. Each message is one HTTP
# write to F&O or Dataverse (tens of milliseconds), so 50 is a few seconds of backlog per replica.
MESSAGES_PER_REPLICA = 50
MAX_REPLICAS = 10
# Time a stopping consumer gets, beyond one lock duration, to settle the message in hand.
_SHUTDOWN_MARGIN_SECONDS = 30

_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_SHORT = {Origin.FO: "fo", Origin.DATAVERSE: "dv"}
_App = TypeVar("_App", "ProducerApp", "ConsumerApp")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerApp:
    """The producer that reads changes from one source system and publishes them to the area topics."""

    name: str
    origin: Origin

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments after the producer image's entry point (``dualbus produce``)."""
        return ("--from", self.origin.value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerApp:
    """The consumer of one route: it reads one subscription and writes to one target system."""

    name: str
    topic: TopicSpec
    subscription: SubscriptionSpec

    @property
    def area(self) -> str:
        """The area whose topic this consumer reads."""
        return self.topic.area

    @property
    def target(self) -> Origin:
        """The system this consumer writes to."""
        return self.subscription.direction.target

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments after the consumer image's entry point (``dualbus consume``)."""
        return (self.area, "--to", self.target.value)

    @property
    def max_replicas(self) -> int:
        """The most replicas worth running."""
        # A session is locked by one receiver at a time, so replicas beyond the number of ordering buckets
        # (the sessions a topic's messages are spread over) would sit idle.
        if self.subscription.requires_session:
            return min(MAX_REPLICAS, self.topic.ordering_buckets)
        return MAX_REPLICAS

    @property
    def shutdown_grace_seconds(self) -> int:
        """How long the platform waits after SIGTERM before it kills the consumer."""
        # Long enough to finish the message in hand: its lock would lapse by then anyway.
        return int(self.subscription.lock_duration.total_seconds()) + _SHUTDOWN_MARGIN_SECONDS

    def scale_metadata(self, namespace: str) -> dict[str, str]:
        """KEDA ``azure-servicebus`` trigger metadata; ``namespace`` is the short namespace name."""
        # KEDA builds the host name from the namespace and the cloud's suffix, so it wants the short name.
        return {
            "topicName": self.topic.name,
            "subscriptionName": self.subscription.name,
            "messageCount": str(MESSAGES_PER_REPLICA),
            "namespace": namespace,
        }

    def unroutable_scale_metadata(self, namespace: str) -> dict[str, str]:
        """KEDA metadata for the topic's unroutable subscription, which this consumer also drains."""
        return self.scale_metadata(namespace) | {"subscriptionName": self.topic.unroutable.name}


def producer_apps() -> list[ProducerApp]:
    """One producer per source system, F&O first."""
    return [_checked(ProducerApp(name=f"{APP_PREFIX}-from-{o.value}", origin=o)) for o in Origin]


def consumer_apps(topology: Topology) -> list[ConsumerApp]:
    """One consumer per route (area and direction), in topology order; names are unique."""
    apps = [
        _checked(ConsumerApp(name=_consumer_name(topic, sub), topic=topic, subscription=sub))
        for topic, sub in topology.routes()
    ]
    names = [app.name for app in apps]
    if len(set(names)) != len(names):
        raise TopologyError(f"consumer app names collide: {', '.join(sorted(names))}")
    return apps


def _consumer_name(topic: TopicSpec, sub: SubscriptionSpec) -> str:
    return f"{APP_PREFIX}-{topic.area}-to-{_SHORT[sub.direction.target]}"


def _checked(app: _App) -> _App:
    if not _APP_NAME.match(app.name):
        raise TopologyError(
            f"app name {app.name!r} must be 2-32 lower-case letters, digits or hyphens, "
            "starting with a letter"
        )
    return app
