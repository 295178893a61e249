"""Entities built from an emulator configuration: queues, topics, subscriptions, dead-letter sub-queues.

Paths are what the SDK addresses, lower-cased because Service Bus entity names are case-insensitive:
``orders``, ``orders/$deadletterqueue``, ``events/subscriptions/audit``. All namespaces of the
configuration share one address space, since every client reaches the emulator at the same host.
"""

from __future__ import annotations

from datetime import timedelta

from sandbox.servicebus.config import EmulatorConfig, QueueConfig, SubscriptionConfig, TopicConfig
from sandbox.servicebus.entity import Entity, EntitySettings
from sandbox.servicebus.filters import compile_action, compile_rule, compile_rules
from sandbox.servicebus.routing import ActionRule, Route

__all__ = ["DEAD_LETTER_SUFFIX", "Topology", "build_topology", "entity_path"]

DEAD_LETTER_SUFFIX = "/$deadletterqueue"


class Topology:
    """Entities by path and each topic's subscription routes."""

    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.routes: dict[str, list[Route]] = {}

    def add_receivable(self, path: str, settings: EntitySettings) -> Entity:
        """Add a queue or subscription together with its dead-letter sub-queue."""
        dlq_settings = EntitySettings(lock_ms=settings.lock_ms, max_delivery_count=2**31 - 1)
        dlq = Entity(path + DEAD_LETTER_SUFFIX, dlq_settings)
        entity = Entity(path, settings, dead_letter=dlq)
        self.entities[path] = entity
        self.entities[dlq.path] = dlq
        return entity

    def add_topic(self, config: TopicConfig) -> None:
        """Add a topic, its subscriptions and their compiled rules."""
        path = entity_path(config.name)
        settings = EntitySettings(
            ttl_ms=_ms(config.default_message_time_to_live),
            duplicate_window_ms=_dedup_window(
                config.requires_duplicate_detection, config.duplicate_detection_history_time_window
            ),
        )
        self.entities[path] = Entity(path, settings, is_topic=True)
        routes = self.routes.setdefault(path, [])
        for sub in config.subscriptions:
            sub_path = f"{path}/subscriptions/{sub.name.lower()}"
            entity = self.add_receivable(sub_path, _receiver_settings(sub, None))
            routes.append(_route(entity, sub))


def _route(entity: Entity, config: SubscriptionConfig) -> Route:
    plain = [rule for rule in config.rules if rule.action is None]
    actions = []
    for rule in config.rules:
        action = compile_action(rule)
        if action is not None:
            actions.append(ActionRule(rule.name, compile_rule(rule), action))
    if not config.rules:
        return Route(entity)
    return Route(entity, compile_rules(plain) if plain else None, takes_plain=bool(plain), actions=actions)


def entity_path(name: str) -> str:
    """The normalised path of an entity name."""
    return name.strip("/").lower()


def _ms(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds() * 1000)


def _dedup_window(required: bool, window: timedelta) -> int | None:
    return _ms(window) if required else None


def _receiver_settings(config: QueueConfig | SubscriptionConfig, dedup: int | None) -> EntitySettings:
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
            dedup = _dedup_window(
                queue.requires_duplicate_detection, queue.duplicate_detection_history_time_window
            )
            topology.add_receivable(entity_path(queue.name), _receiver_settings(queue, dedup))
        for topic in namespace.topics:
            topology.add_topic(topic)
    return topology
