"""Brings a Service Bus namespace in line with the topology, through the administration API, idempotently.

``plan`` reads what the namespace has and lists the changes that would make it match ``shared.topology``: the
control queue, each area topic, its direction subscriptions and catch-all ``unroutable`` subscription, and
each subscription's one rule (other rules, Azure's ``$Default`` included, are removed: they would route
messages the topology does not mean to). ``apply`` makes them. Entities the topology does not name are left
alone. Some properties Azure sets only when an entity is created (``_CREATE_ONLY``): a difference in one is
planned as a refusal, never applied, and ``apply`` then stops before changing anything, since the only way
is to recreate the entity, which drops its messages: the operator's decision, not this module's.

Property names are the SDK's (``azure.servicebus.management`` QueueProperties, TopicProperties,
SubscriptionProperties, RuleProperties, SqlRuleFilter).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.servicebus.management import RuleProperties, ServiceBusAdministrationClient, SqlRuleFilter

from dualbus.shared.errors import BusError, TopologyError
from dualbus.shared.topology import NEVER_EXPIRES, Subscription, TopicSpec, Topology

__all__ = ["Change", "apply_changes", "plan_changes"]

Action = Literal["create", "update", "delete", "refuse"]
Kind = Literal["queue", "topic", "subscription", "rule"]

# The control queue's settings, as rendered for the emulator's Config.json (shared.render). A command is its
# route's state until a later one replaces it (shared.control), so it must never expire.
_CONTROL_QUEUE: dict[str, Any] = {
    "lock_duration": timedelta(minutes=1),
    "max_delivery_count": 10,
    "default_message_time_to_live": NEVER_EXPIRES,
    "dead_lettering_on_message_expiration": False,
    "requires_session": False,
    "requires_duplicate_detection": False,
}

# Properties Azure takes only when an entity is created. "You can't enable or disable duplicate detection
# after the queue or topic is created"
# (https://learn.microsoft.com/azure/service-bus-messaging/enable-duplicate-detection); "You can't enable or
# disable message sessions after the queue or subscription is created"
# (https://learn.microsoft.com/azure/service-bus-messaging/enable-message-sessions). EnablePartitioning is
# another (https://learn.microsoft.com/azure/service-bus-messaging/enable-partitions), which the topology
# never sets.
_CREATE_ONLY: dict[Kind, frozenset[str]] = {
    "queue": frozenset({"requires_session", "requires_duplicate_detection"}),
    "topic": frozenset({"requires_duplicate_detection"}),
    "subscription": frozenset({"requires_session"}),
}
# What a refused change asks of the operator: apply creates what is missing, so deleting is the one step.
_RECREATE: dict[Kind, str] = {
    "queue": (
        "Azure sets this only when the queue is created; to recreate it: note the routes `dualbus paused` "
        "lists, delete the queue (its commands go with it), run `dualbus topology apply` again, then pause "
        "those routes again"
    ),
    "topic": (
        "Azure sets this only when the topic is created; to recreate it: drain its subscriptions, delete the "
        "topic (they go with it), then run `dualbus topology apply` again"
    ),
    "subscription": (
        "Azure sets this only when the subscription is created; to recreate it: drain it, delete it, then "
        "run `dualbus topology apply` again"
    ),
}
# A queue's TTL is stamped on a message when it is sent: a longer one leaves the commands already queued as
# they were.
_QUEUED_COMMANDS_KEEP_EXPIRY = (
    "commands already on the queue keep the expiry they were sent with: "
    "pause again each route `dualbus paused` lists"
)


@dataclass(frozen=True, slots=True)
class Change:
    """One step: what to do to which entity, and the property differences it settles."""

    action: Action
    kind: Kind
    path: str
    differences: tuple[str, ...] = ()
    # How to make it; None for a refused change.
    run: Callable[[ServiceBusAdministrationClient], object] | None = field(default=None, compare=False)

    def describe(self) -> str:
        """One line, e.g. ``+ topic dualbus.customer``, ``~ subscription t/s: max_delivery_count 5 -> 10``."""
        sign = {"create": "+", "update": "~", "delete": "-", "refuse": "!"}[self.action]
        text = f"{sign} {self.kind} {self.path}"
        return f"{text}: {'; '.join(self.differences)}" if self.differences else text


def plan_changes(client: ServiceBusAdministrationClient, topology: Topology) -> list[Change]:
    """Every change that would make the namespace match ``topology``; empty when it already does."""
    with _bus_errors("reading the namespace"):
        changes = _control_queue_changes(client, topology.control_queue)
        for topic in topology.topics:
            changes += _topic_changes(client, topic)
    return changes


def apply_changes(client: ServiceBusAdministrationClient, changes: list[Change]) -> None:
    """Make the planned changes in order; a refused one stops the run before anything is changed."""
    refused = [change.describe() for change in changes if change.action == "refuse"]
    if refused:
        raise TopologyError(
            "the namespace cannot be brought in line without recreating; nothing was changed: "
            + "; ".join(refused)
        )
    for change in changes:
        if change.run is not None:
            with _bus_errors(change.describe()):
                change.run(client)


def _control_queue_changes(client: ServiceBusAdministrationClient, name: str) -> list[Change]:
    existing = _get(lambda: client.get_queue(name))
    if existing is None:
        return [Change("create", "queue", name, run=lambda c: c.create_queue(name, **_CONTROL_QUEUE))]
    expiring = not _same(existing.default_message_time_to_live, NEVER_EXPIRES)
    return _changes_to(
        "queue",
        name,
        existing,
        _CONTROL_QUEUE,
        lambda c, updatable: c.update_queue(existing, **updatable),
        note=(_QUEUED_COMMANDS_KEEP_EXPIRY,) if expiring else (),
    )


def _topic_changes(client: ServiceBusAdministrationClient, topic: TopicSpec) -> list[Change]:
    wanted: dict[str, Any] = {
        "default_message_time_to_live": topic.default_message_time_to_live,
        "duplicate_detection_history_time_window": topic.duplicate_detection_window,
        "requires_duplicate_detection": True,
    }
    existing = _get(lambda: client.get_topic(topic.name))
    changes: list[Change] = []
    if existing is None:
        changes.append(
            Change("create", "topic", topic.name, run=lambda c: c.create_topic(topic.name, **wanted))
        )
    else:
        changes += _changes_to(
            "topic", topic.name, existing, wanted, lambda c, updatable: c.update_topic(existing, **updatable)
        )
    for subscription in topic.all_subscriptions:
        changes += _subscription_changes(client, topic.name, subscription, topic_exists=existing is not None)
    return changes


def _subscription_changes(
    client: ServiceBusAdministrationClient, topic: str, sub: Subscription, *, topic_exists: bool
) -> list[Change]:
    path = f"{topic}/{sub.name}"
    wanted: dict[str, Any] = {
        "lock_duration": sub.lock_duration,
        "max_delivery_count": sub.max_delivery_count,
        "default_message_time_to_live": sub.default_message_time_to_live,
        "dead_lettering_on_message_expiration": sub.dead_lettering_on_message_expiration,
        "requires_session": sub.requires_session,
    }
    existing = _get(lambda: client.get_subscription(topic, sub.name)) if topic_exists else None
    if existing is None:
        # Created with the topology's rule in place of Azure's $Default, which would route everything.
        def create(c: ServiceBusAdministrationClient) -> None:
            c.create_subscription(topic, sub.name, **wanted)
            c.create_rule(topic, sub.name, sub.rule_name, filter=SqlRuleFilter(sub.rule_sql))
            for rule in c.list_rules(topic, sub.name):
                if rule.name != sub.rule_name:
                    c.delete_rule(topic, sub.name, rule.name)

        return [Change("create", "subscription", path, (f"rule {sub.rule_name}: {sub.rule_sql}",), create)]
    changes = _changes_to(
        "subscription",
        path,
        existing,
        wanted,
        lambda c, updatable: c.update_subscription(topic, existing, **updatable),
    )
    return changes + _rule_changes(client, topic, sub)


def _rule_changes(client: ServiceBusAdministrationClient, topic: str, sub: Subscription) -> list[Change]:
    path = f"{topic}/{sub.name}"
    changes: list[Change] = []
    found = False
    for rule in client.list_rules(topic, sub.name):
        if rule.name != sub.rule_name:
            remove = functools.partial(_delete_rule, topic=topic, subscription=sub.name, rule=rule.name)
            changes.append(Change("delete", "rule", f"{path}/{rule.name}", run=remove))
            continue
        found = True
        current = rule.filter.sql_expression if isinstance(rule.filter, SqlRuleFilter) else repr(rule.filter)
        if current != sub.rule_sql or rule.action is not None:
            rule.filter, rule.action = SqlRuleFilter(sub.rule_sql), None
            changes.append(
                Change(
                    "update",
                    "rule",
                    f"{path}/{sub.rule_name}",
                    (f"filter {current!r} -> {sub.rule_sql!r}",),
                    functools.partial(_update_rule, topic=topic, subscription=sub.name, rule=rule),
                )
            )
    if not found:
        changes.insert(
            0,
            Change(
                "create",
                "rule",
                f"{path}/{sub.rule_name}",
                (sub.rule_sql,),
                lambda c: c.create_rule(topic, sub.name, sub.rule_name, filter=SqlRuleFilter(sub.rule_sql)),
            ),
        )
    return changes


def _delete_rule(client: ServiceBusAdministrationClient, *, topic: str, subscription: str, rule: str) -> None:
    client.delete_rule(topic, subscription, rule)


def _update_rule(
    client: ServiceBusAdministrationClient, *, topic: str, subscription: str, rule: RuleProperties
) -> None:
    client.update_rule(topic, subscription, rule)


def _changes_to(
    kind: Kind,
    path: str,
    existing: Any,  # noqa: ANN401 - SDK properties
    wanted: dict[str, Any],
    update: Callable[[ServiceBusAdministrationClient, dict[str, Any]], object],
    *,
    note: tuple[str, ...] = (),
) -> list[Change]:
    """What an existing entity needs: a refusal for each create-only property that differs, and one update
    of the others (``update(client, properties)``) when any differs, ``note`` added to its line."""
    changes = _refusals(kind, path, existing, wanted)
    updatable = _updatable(kind, wanted)
    if differences := _differences(existing, updatable):
        changes.append(Change("update", kind, path, differences + note, lambda c: update(c, updatable)))
    return changes


def _refusals(kind: Kind, path: str, existing: Any, wanted: dict[str, Any]) -> list[Change]:  # noqa: ANN401
    """A refused change naming each create-only property that differs, and what to do; none if all match."""
    fixed = {key: value for key, value in wanted.items() if key in _CREATE_ONLY[kind]}
    differences = _differences(existing, fixed)
    return [Change("refuse", kind, path, (*differences, _RECREATE[kind]))] if differences else []


def _updatable(kind: Kind, wanted: dict[str, Any]) -> dict[str, Any]:
    """The properties an update may change: an existing entity keeps its create-only ones as they are."""
    return {key: value for key, value in wanted.items() if key not in _CREATE_ONLY[kind]}


def _differences(existing: Any, wanted: dict[str, Any]) -> tuple[str, ...]:  # noqa: ANN401 - SDK properties
    return tuple(
        f"{key} {_shown(getattr(existing, key))} -> {_shown(value)}"
        for key, value in wanted.items()
        if not _same(getattr(existing, key), value)
    )


def _same(current: object, wanted: object) -> bool:
    if isinstance(current, timedelta) and isinstance(wanted, timedelta):
        # Azure's own "never" is TimeSpan.MaxValue, which the SDK reads a fraction of a second past
        # NEVER_EXPIRES; a queue Azure made with its default TTL needs no change.
        return current == wanted or min(current, wanted) >= NEVER_EXPIRES
    return current == wanted


def _shown(value: object) -> str:
    return "never" if isinstance(value, timedelta) and value >= NEVER_EXPIRES else str(value)


def _get(read: Callable[[], Any]) -> Any:  # noqa: ANN401 - SDK properties
    try:
        return read()
    except ResourceNotFoundError:
        return None


@contextmanager
def _bus_errors(step: str) -> Iterator[None]:
    """Azure errors become BusError, naming the step."""
    try:
        yield
    except AzureError as exc:
        raise BusError(f"{step}: {type(exc).__name__}: {exc}") from exc
