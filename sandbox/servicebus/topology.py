"""Entities built from an emulator configuration: queues, topics, subscriptions, dead-letter sub-queues.

Paths are what the SDK addresses, lower-cased because Service Bus entity names are case-insensitive:
``orders``, ``orders/$deadletterqueue``, ``events/subscriptions/audit``. All namespaces of the
configuration share one address space, since every client reaches the emulator at the same host.
"""

from __future__ import annotations

from datetime import timedelta

from dualbus.sandbox.servicebus.config import (
    EmulatorConfig,
    QueueConfig,
    RuleConfig,
    SqlFilterConfig,
    SubscriptionConfig,
    TopicConfig,
)
from dualbus.sandbox.servicebus.entity import Entity, EntitySettings
from dualbus.sandbox.servicebus.filters import compile_action, compile_rule, compile_rules
from dualbus.sandbox.servicebus.routing import ActionRule, Route

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "Topology",
    "build_topology",
    "dead_letter_settings",
    "entity_path",
    "queue_settings",
    "receiver_settings",
    "route_for",
    "topic_settings",
]

DEAD_LETTER_SUFFIX = "/$deadletterqueue"


class Topology:
    """Entities by path and each topic's subscription routes."""

    def __init__(
        self, entities: dict[str, Entity] | None = None, routes: dict[str, list[Route]] | None = None
    ) -> None:
        # A running broker's own dictionaries may be passed in, to add entities to it at run time.
        self.entities: dict[str, Entity] = {} if entities is None else entities
        self.routes: dict[str, list[Route]] = {} if routes is None else routes

    def add_receivable(self, path: str, settings: EntitySettings) -> Entity:
        """Add a queue or subscription together with its dead-letter sub-queue."""
        dlq = Entity(path + DEAD_LETTER_SUFFIX, dead_letter_settings(settings))
        entity = Entity(path, settings, dead_letter=dlq)
        self.entities[path] = entity
        self.entities[dlq.path] = dlq
        return entity

    def add_topic(self, config: TopicConfig) -> None:
        """Add a topic, its subscriptions and their compiled rules."""
        path = entity_path(config.name)
        self.entities[path] = Entity(path, topic_settings(config), is_topic=True)
        routes = self.routes.setdefault(path, [])
        for sub in config.subscriptions:
            sub_path = f"{path}/subscriptions/{sub.name.lower()}"
            entity = self.add_receivable(sub_path, receiver_settings(sub, None))
            routes.append(route_for(entity, sub.rules) if sub.rules else Route(entity))


def route_for(entity: Entity, rules: list[RuleConfig]) -> Route:
    """The route of a subscription with exactly ``rules``: none at all means it takes nothing."""
    plain = [rule for rule in rules if rule.action is None]
    actions = []
    for rule in rules:
        action = compile_action(rule)
        if action is not None:
            actions.append(ActionRule(rule.name, compile_rule(rule), action))
    if any(_is_true_filter(rule) for rule in plain):
        # A match-all rule (Azure's $Default is one) makes the other plain rules moot: skip evaluating them.
        return Route(entity, None, takes_plain=True, actions=actions)
    return Route(entity, compile_rules(plain) if plain else None, takes_plain=bool(plain), actions=actions)


def _is_true_filter(rule: RuleConfig) -> bool:
    return isinstance(rule.filter, SqlFilterConfig) and rule.filter.expression.replace(" ", "") == "1=1"


def dead_letter_settings(settings: EntitySettings) -> EntitySettings:
    """A dead-letter sub-queue's settings: its entity's lock, and no delivery limit of its own."""
    return EntitySettings(lock_ms=settings.lock_ms, max_delivery_count=2**31 - 1)


def topic_settings(config: TopicConfig) -> EntitySettings:
    """What the broker honours of a topic's properties."""
    return EntitySettings(
        ttl_ms=_ms(config.default_message_time_to_live),
        duplicate_window_ms=_dedup_window(
            config.requires_duplicate_detection, config.duplicate_detection_history_time_window
        ),
    )


def queue_settings(config: QueueConfig) -> EntitySettings:
    """What the broker honours of a queue's properties."""
    dedup = _dedup_window(config.requires_duplicate_detection, config.duplicate_detection_history_time_window)
    return receiver_settings(config, dedup)


def entity_path(name: str) -> str:
    """The normalised path of an entity name."""
    return name.strip("/").lower()


def _ms(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds() * 1000)


def _dedup_window(required: bool, window: timedelta) -> int | None:
    return _ms(window) if required else None


def receiver_settings(config: QueueConfig | SubscriptionConfig, dedup: int | None) -> EntitySettings:
    return EntitySettings(
        lock_ms=_ms(config.lock_duration) or 60_000,
        max_delivery_count=config.max_delivery_count,
        requires_session=config.requires_session,
        ttl_ms=_ms(config.default_message_time_to_live),
        dead_letter_on_expiry=config.dead_lettering_on_message_expiration,
        duplicate_window_ms=dedup,
        forward_to=entity_path(config.forward_to) if config.forward_to else None,
        forward_dead_letters_to=(
            entity_path(config.forward_dead_lettered_messages_to)
            if config.forward_dead_lettered_messages_to
            else None
        ),
    )


def build_topology(config: EmulatorConfig) -> Topology:
    """Every entity of every namespace in ``config``; rules are compiled here, so a bad one fails start."""
    topology = Topology()
    for namespace in config.namespaces:
        for queue in namespace.queues:
            topology.add_receivable(entity_path(queue.name), queue_settings(queue))
        for topic in namespace.topics:
            topology.add_topic(topic)
    return topology
