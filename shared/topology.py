"""The Service Bus topology, one typed definition: areas, topics, subscriptions, rules and their settings.

The emulator's Config.json, the Bicep parameters and the KEDA scale rules are rendered from it (see
``shared.render``). Limits checked here are Azure's, from
https://learn.microsoft.com/azure/service-bus-messaging/service-bus-quotas and the entity naming rules.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dualbus.shared.envelope import Origin, format_validation_error
from dualbus.shared.errors import TopologyError
from dualbus.shared.routing import (
    ORIGINAL_ID_PROPERTY,
    REPLAY_COUNT_PROPERTY,
    REPLAY_TARGET_PROPERTY,
    UNROUTABLE,
    Subscription,
    UnroutableSubscription,
)

__all__ = [
    "AREAS",
    "NEVER_EXPIRES",
    "ORIGINAL_ID_PROPERTY",
    "REPLAY_COUNT_PROPERTY",
    "REPLAY_TARGET_PROPERTY",
    "UNROUTABLE",
    "Direction",
    "Subscription",
    "SubscriptionSpec",
    "TopicSpec",
    "Topology",
    "UnroutableSubscription",
    "default_topology",
]

AREAS = ("company", "currency", "organisation", "customer", "vendor", "product")

_TOPIC_NAME_MAX = 260
_SUBSCRIPTION_NAME_MAX = 50
# Letters, digits, periods, hyphens and underscores; starts and ends with a letter or digit.
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_MAX_LOCK = timedelta(minutes=5)
_MIN_DEDUP_WINDOW = timedelta(seconds=20)
_MAX_DEDUP_WINDOW = timedelta(days=7)

# A time to live that never runs out: Azure's default and longest, TimeSpan.MaxValue (Int64.MaxValue ticks,
# 10675199.02:48:05.4775807, https://learn.microsoft.com/dotnet/api/system.timespan.maxvalue; "the default
# expiration time is also largest possible value for a signed 64-bit integer" on Standard and Premium,
# https://learn.microsoft.com/azure/service-bus-messaging/message-expiration). Cut to whole seconds: a
# timedelta holds no 100 ns ticks, and the SDK reads Azure's 5.4775807 s as 5.477581 s, past
# TimeSpan.MaxValue (sent back, it would not fit); the official emulator's Config.json pattern also allows
# whole seconds only (ServiceBus-Emulator/Schema/Config-schema.json in
# Azure/azure-service-bus-emulator-installer). Renders as P10675199DT2H48M5S.
NEVER_EXPIRES = timedelta(days=10_675_199, hours=2, minutes=48, seconds=5)


class Direction(StrEnum):
    """Which way a subscription carries changes; its value is the subscription's name."""

    TO_DATAVERSE = "to-dataverse"
    TO_FO = "to-fo"

    @property
    def origin(self) -> Origin:
        """The origin of the changes this direction applies."""
        return Origin.FO if self is Direction.TO_DATAVERSE else Origin.DATAVERSE

    @property
    def target(self) -> Origin:
        """The system this direction writes to."""
        return self.origin.other


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubscriptionSpec(_Strict):
    """One subscription of an area topic: the consumers of one direction read it."""

    direction: Direction
    requires_session: bool = True
    lock_duration: timedelta = timedelta(seconds=60)
    max_delivery_count: Annotated[int, Field(ge=1, le=2000)] = 10
    default_message_time_to_live: timedelta = timedelta(days=14)
    dead_lettering_on_message_expiration: bool = True

    @property
    def name(self) -> str:
        """The subscription's name on the bus."""
        return self.direction.value

    @property
    def rule_name(self) -> str:
        """The name of the subscription's one rule."""
        return f"from-{self.direction.origin.value}"

    @property
    def rule_sql(self) -> str:
        """The rule's SQL filter: changes from the other side, and replays addressed to this subscription.

        A session subscription also wants a session id: without one no session receiver would ever get the
        message, so it goes to the topic's unroutable subscription instead.
        """
        session = " AND sys.SessionId IS NOT NULL" if self.requires_session else ""
        return (
            f"origin = '{self.direction.origin.value}'{session} AND "
            f"({REPLAY_TARGET_PROPERTY} IS NULL OR {REPLAY_TARGET_PROPERTY} = '{self.name}')"
        )

    @model_validator(mode="after")
    def _check_lock(self) -> Self:
        if not timedelta(seconds=5) <= self.lock_duration <= _MAX_LOCK:
            raise ValueError(
                f"lock_duration must be between 5 seconds and 5 minutes, not {self.lock_duration}"
            )
        return self


class TopicSpec(_Strict):
    """The topic of one area, with the subscriptions of the directions that area syncs."""

    area: str
    subscriptions: Annotated[tuple[SubscriptionSpec, ...], Field(min_length=1)]
    duplicate_detection_window: timedelta = timedelta(minutes=10)
    default_message_time_to_live: timedelta = timedelta(days=14)
    ordering_buckets: Annotated[int, Field(ge=1, le=1024)] = 32

    @property
    def name(self) -> str:
        """The topic's name on the bus."""
        return f"dualbus.{self.area}"

    @property
    def unroutable(self) -> UnroutableSubscription:
        """The catch-all subscription of this topic."""
        routes = tuple((s.direction.origin.value, s.name, s.requires_session) for s in self.subscriptions)
        return UnroutableSubscription(routes=routes)

    @property
    def all_subscriptions(self) -> tuple[Subscription, ...]:
        """The direction subscriptions, then the catch-all: every subscription the topic has on the bus."""
        return (*self.subscriptions, self.unroutable)

    def subscription(self, direction: Direction) -> SubscriptionSpec:
        """The subscription of one direction; TopologyError if this area does not sync that way."""
        for subscription in self.subscriptions:
            if subscription.direction is direction:
                return subscription
        raise TopologyError(f"area {self.area!r} has no {direction.value} subscription")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.area not in AREAS:
            raise ValueError(f"unknown area {self.area!r}; known areas: {', '.join(AREAS)}")
        directions = [s.direction for s in self.subscriptions]
        if len(set(directions)) != len(directions):
            raise ValueError(f"area {self.area!r} has two subscriptions for one direction")
        if not _MIN_DEDUP_WINDOW <= self.duplicate_detection_window <= _MAX_DEDUP_WINDOW:
            raise ValueError("duplicate_detection_window must be between 20 seconds and 7 days")
        _check_name(self.name, _TOPIC_NAME_MAX, "topic")
        for subscription in self.subscriptions:
            _check_name(subscription.name, _SUBSCRIPTION_NAME_MAX, "subscription")
            _check_name(subscription.rule_name, _SUBSCRIPTION_NAME_MAX, "rule")
        return self


class Topology(_Strict):
    """Every area topic of one namespace."""

    namespace: str = "sbemulatorns"
    # Operator commands to consumers (pause, resume) travel on this queue; see shared.control.
    control_queue: str = "dualbus.control"
    topics: Annotated[tuple[TopicSpec, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        areas = [topic.area for topic in self.topics]
        duplicates = sorted({area for area in areas if areas.count(area) > 1})
        if duplicates:
            raise ValueError(f"areas defined twice: {', '.join(duplicates)}")
        _check_name(self.control_queue, _TOPIC_NAME_MAX, "queue")
        if self.control_queue in {topic.name for topic in self.topics}:
            raise ValueError(f"the control queue {self.control_queue!r} has a topic's name")
        return self

    @classmethod
    def parse(cls, raw: object) -> Topology:
        """Validate a topology from parsed JSON; TopologyError names what is wrong."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise TopologyError(f"invalid topology: {format_validation_error(exc)}") from exc

    def topic(self, area: str) -> TopicSpec:
        """The topic of one area; TopologyError if the area is unknown."""
        for topic in self.topics:
            if topic.area == area:
                return topic
        raise TopologyError(f"unknown area {area!r}; this topology has: {', '.join(self.areas)}")

    @property
    def areas(self) -> tuple[str, ...]:
        """The areas, in definition order."""
        return tuple(topic.area for topic in self.topics)

    def routes(self) -> list[tuple[TopicSpec, SubscriptionSpec]]:
        """Every (topic, direction subscription) pair: one consumer deployment each."""
        return [(topic, sub) for topic in self.topics for sub in topic.subscriptions]

    def subscriptions(self) -> list[tuple[TopicSpec, Subscription]]:
        """Every (topic, subscription) pair on the bus, each topic's catch-all included."""
        return [(topic, sub) for topic in self.topics for sub in topic.all_subscriptions]


def _check_name(name: str, limit: int, kind: str) -> None:
    if len(name) > limit:
        raise ValueError(f"{kind} name {name!r} is longer than Service Bus's {limit} characters")
    if not _NAME_PATTERN.match(name):
        raise ValueError(
            f"{kind} name {name!r} may hold only letters, digits, '.', '-', '_', "
            "and must start and end with a letter or digit"
        )


def default_topology() -> Topology:
    """dualbus's topology: two-way areas have both directions; company, organisation, product go one way."""
    both = (SubscriptionSpec(direction=Direction.TO_DATAVERSE), SubscriptionSpec(direction=Direction.TO_FO))
    one_way = (SubscriptionSpec(direction=Direction.TO_DATAVERSE),)
    return Topology(
        topics=(
            TopicSpec(area="company", subscriptions=one_way),
            TopicSpec(area="currency", subscriptions=both),
            TopicSpec(area="organisation", subscriptions=one_way),
            TopicSpec(area="customer", subscriptions=both),
            TopicSpec(area="vendor", subscriptions=both),
            TopicSpec(area="product", subscriptions=one_way),
        )
    )
