"""The namespace's entity definitions, changed at run time by the administration API and the rule operations.

Each queue, topic, subscription and rule is kept as a ``Definition``: its name, its properties in the form of
Config.json (so the same validation applies as at start, and the same errors), and the description elements
the emulator stores without acting on them (``MaxSizeInMegabytes``, ``UserMetadata``...), echoed back as Azure
does. A change is validated, applied to the broker's live entities and routes, and journalled as one JSON
document per queue or topic (a topic's holds its subscriptions and rules); on start those documents override
the configuration's entities of the same path, a deletion included. Everything here runs on the server loop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.config import (
    CorrelationFilterConfig,
    EmulatorConfig,
    QueueConfig,
    RuleConfig,
    SqlFilterConfig,
    SubscriptionConfig,
    TopicConfig,
    read_queue,
    read_rule,
    read_subscription,
    read_topic,
)
from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.store import Journal
from dualbus.sandbox.servicebus.topology import (
    DEAD_LETTER_SUFFIX,
    Topology,
    dead_letter_settings,
    entity_path,
    queue_settings,
    receiver_settings,
    route_for,
    topic_settings,
)

__all__ = [
    "DEFAULT_RULE",
    "Catalog",
    "Definition",
    "SubscriptionDefinition",
    "TopicDefinition",
    "format_duration",
]

DEFAULT_RULE = "$Default"
TRUE_EXPRESSION = "1=1"
# Azure's defaults for what a create or update request leaves out (https://learn.microsoft.com/rest/api/servicebus/
# create-queue and the SDK's QueueProperties docs): no expiry (TimeSpan.MaxValue), ten deliveries, a
# ten-minute duplicate-detection window.
_MAX_TIMESPAN = "P10675199DT2H48M5.4775807S"
_CREATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "queue": {
        "LockDuration": "PT1M",
        "RequiresDuplicateDetection": False,
        "RequiresSession": False,
        "DefaultMessageTimeToLive": _MAX_TIMESPAN,
        "DeadLetteringOnMessageExpiration": False,
        "DuplicateDetectionHistoryTimeWindow": "PT10M",
        "MaxDeliveryCount": 10,
    },
    "topic": {
        "DefaultMessageTimeToLive": _MAX_TIMESPAN,
        "RequiresDuplicateDetection": False,
        "DuplicateDetectionHistoryTimeWindow": "PT10M",
    },
    "subscription": {
        "LockDuration": "PT1M",
        "RequiresSession": False,
        "DefaultMessageTimeToLive": _MAX_TIMESPAN,
        "DeadLetteringOnMessageExpiration": False,
        "MaxDeliveryCount": 10,
    },
}
_EXISTS = "com.microsoft:entity-already-exists"
_NOT_FOUND = "amqp:not-found"
_BAD = "com.microsoft:argument-error"
_DELETED = {"Deleted": True}


@dataclass(slots=True)
class Definition:
    """One queue, topic, subscription or rule as the administration API shows it."""

    name: str
    # Config.json's Properties of the entity, or of the rule (FilterType, SqlFilter, CorrelationFilter,
    # Action).
    properties: dict[str, Any]
    # Description elements kept and echoed, not acted on; SQL parameters of a rule, by name, as typed text.
    extras: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, list[str]] = field(default_factory=dict)
    created_ms: int = 0
    updated_ms: int = 0


@dataclass(slots=True)
class SubscriptionDefinition:
    """A subscription and its rules, by lower-case name in creation order."""

    definition: Definition
    rules: dict[str, Definition] = field(default_factory=dict)


@dataclass(slots=True)
class TopicDefinition:
    """A topic and its subscriptions, by lower-case name."""

    definition: Definition
    subscriptions: dict[str, SubscriptionDefinition] = field(default_factory=dict)


class Catalog:
    """Every queue and topic definition and the operations on them, applied to ``bus`` as they happen."""

    def __init__(
        self,
        bus: ServiceBus,
        journal: Journal,
        config: EmulatorConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bus = bus
        self.journal = journal
        self.clock = clock
        self.queues: dict[str, Definition] = {}
        self.topics: dict[str, TopicDefinition] = {}
        now = self._now()
        for namespace in config.namespaces:
            for queue in namespace.queues:
                self.queues[entity_path(queue.name)] = Definition(
                    queue.name, _queue_node(queue), {}, {}, now, now
                )
            for topic in namespace.topics:
                self.topics[entity_path(topic.name)] = _topic_definition(topic, now)

    def _now(self) -> int:
        return int(self.clock() * 1000)

    @property
    def _topology(self) -> Topology:
        return Topology(self.bus.entities, self.bus.routes)

    # -- start-up ------------------------------------------------------------------------------

    def restore(self, documents: list[tuple[str, str]]) -> None:
        """Apply the stored definitions over the configured ones (start-up, before messages are restored)."""
        for path, text in documents:
            document = json.loads(text)
            self._remove_live(path, journal=False)
            self.queues.pop(path, None)
            self.topics.pop(path, None)
            if "Queue" in document:
                definition = _definition(document["Queue"])
                self.queues[path] = definition
                self._install_queue(path, definition)
            elif "Topic" in document:
                topic = TopicDefinition(_definition(document["Topic"]))
                for sub in document["Subscriptions"]:
                    sub_def = SubscriptionDefinition(_definition(sub["Subscription"]))
                    for rule in sub["Rules"]:
                        rule_def = _definition(rule)
                        sub_def.rules[rule_def.name.lower()] = rule_def
                    topic.subscriptions[sub_def.definition.name.lower()] = sub_def
                self.topics[path] = topic
                self._install_topic(path, topic)

    # -- queues and topics ---------------------------------------------------------------------

    def kind_of(self, path: str) -> str | None:
        """``queue``, ``topic`` or None."""
        if path in self.queues:
            return "queue"
        return "topic" if path in self.topics else None

    def put_queue(
        self, name: str, properties: dict[str, Any], extras: dict[str, str], *, update: bool
    ) -> Definition:
        """Create (or, with ``update``, replace) a queue; BrokerError 409/404/400 as Azure answers."""
        path = self._check_new(name, update)
        old = self.queues.get(path)
        if update and old is None:
            raise _missing(name)
        merged = {**_CREATE_DEFAULTS["queue"], **properties}  # a PUT replaces: what it leaves out is default
        definition = _changed(old, name, merged, extras, self._now())
        config = _validated(read_queue, {"Name": name, "Properties": merged}, name)
        self._check_forwarding(path, config.forward_to, config.forward_dead_lettered_messages_to)
        if old is not None:
            _check_session_kept(self.bus.entities.get(path), config.requires_session)
            _check_created_only(old, merged)
        self.queues[path] = definition
        self._install_queue(path, definition)
        self._save(path)
        return definition

    def put_topic(
        self, name: str, properties: dict[str, Any], extras: dict[str, str], *, update: bool
    ) -> Definition:
        """Create (or, with ``update``, replace) a topic; its subscriptions are kept."""
        path = self._check_new(name, update)
        old = self.topics.get(path)
        if update and old is None:
            raise _missing(name)
        merged = {**_CREATE_DEFAULTS["topic"], **properties}  # a PUT replaces: what it leaves out is default
        _validated(read_topic, {"Name": name, "Properties": merged}, name)
        if old is not None:
            _check_created_only(old.definition, merged)
        definition = _changed(old.definition if old else None, name, merged, extras, self._now())
        topic = TopicDefinition(definition, old.subscriptions if old else {})
        self.topics[path] = topic
        self._install_topic(path, topic)
        self._save(path)
        return definition

    def _check_new(self, name: str, update: bool) -> str:
        path = entity_path(name)
        if "/subscriptions/" in path or path.endswith(DEAD_LETTER_SUFFIX):
            raise BrokerError(_BAD, f"'{name}' is not a valid queue or topic name.", status=400)
        if not update and self.kind_of(path) is not None:
            raise BrokerError(_EXISTS, f"The messaging entity '{name}' already exists.", status=409)
        return path

    def delete_entity(self, name: str) -> None:
        """Delete a queue or topic (a topic with its subscriptions) and every message in them."""
        path = entity_path(name)
        if self.queues.pop(path, None) is None and self.topics.pop(path, None) is None:
            raise _missing(name)
        self._remove_live(path)
        self.journal.entity_document(path, json.dumps(_DELETED))

    def queue(self, path: str) -> Definition | None:
        """The queue at ``path``."""
        return self.queues.get(path)

    def topic(self, path: str) -> TopicDefinition | None:
        """The topic at ``path``."""
        return self.topics.get(path)

    # -- subscriptions -------------------------------------------------------------------------

    def subscription(self, topic: str, name: str) -> SubscriptionDefinition | None:
        """A subscription of ``topic``, or None."""
        found = self.topics.get(entity_path(topic))
        return found.subscriptions.get(name.lower()) if found else None

    def put_subscription(
        self,
        topic: str,
        name: str,
        properties: dict[str, Any],
        extras: dict[str, str],
        *,
        update: bool,
        default_rule: Definition | None = None,
    ) -> Definition:
        """Create (with the ``$Default`` match-all rule, or ``default_rule``) or replace a subscription."""
        topic_def = self._topic_or_404(topic)
        old = topic_def.subscriptions.get(name.lower())
        if update and old is None:
            raise _missing(f"{topic}/subscriptions/{name}")
        if not update and old is not None:
            raise BrokerError(_EXISTS, f"The subscription '{name}' already exists.", status=409)
        merged = {
            **_CREATE_DEFAULTS["subscription"],
            **properties,
        }  # a PUT replaces: what it leaves out is default
        config = _validated(read_subscription, {"Name": name, "Properties": merged}, name)
        path = _subscription_path(topic, name)
        self._check_forwarding(path, config.forward_to, config.forward_dead_lettered_messages_to)
        if old is not None:
            _check_session_kept(self.bus.entities.get(path), config.requires_session)
        now = self._now()
        definition = _changed(old.definition if old else None, name, merged, extras, now)
        if old is not None:
            rules = old.rules
        else:
            first = default_rule or Definition(DEFAULT_RULE, _true_rule(), created_ms=now, updated_ms=now)
            _rule_config(first)  # a bad default rule refuses the subscription
            rules = {first.name.lower(): first}
        sub = SubscriptionDefinition(definition, rules)
        topic_def.subscriptions[name.lower()] = sub
        self._install_subscription(entity_path(topic), sub)
        self._save(entity_path(topic))
        return definition

    def delete_subscription(self, topic: str, name: str) -> None:
        """Delete a subscription and its messages."""
        topic_def = self._topic_or_404(topic)
        if topic_def.subscriptions.pop(name.lower(), None) is None:
            raise _missing(f"{topic}/subscriptions/{name}")
        path = _subscription_path(topic, name)
        routes = self.bus.routes.get(entity_path(topic), [])
        routes[:] = [route for route in routes if route.subscription.path != path]
        self._drop_entity(path)
        self._save(entity_path(topic))

    # -- rules ---------------------------------------------------------------------------------

    def rules(self, topic: str, subscription: str) -> list[Definition]:
        """A subscription's rules in creation order; 404 if there is no such subscription."""
        return list(self._subscription_or_404(topic, subscription).rules.values())

    def put_rule(self, topic: str, subscription: str, rule: Definition, *, update: bool) -> Definition:
        """Add (or, with ``update``, replace) a rule; the subscription's routing changes at once."""
        sub = self._subscription_or_404(topic, subscription)
        old = sub.rules.get(rule.name.lower())
        if update and old is None:
            raise _missing(f"{topic}/subscriptions/{subscription}/rules/{rule.name}")
        if not update and old is not None:
            raise BrokerError(_EXISTS, f"The rule '{rule.name}' already exists.", status=409)
        _rule_config(rule)
        now = self._now()
        rule.created_ms = old.created_ms if old else now
        rule.updated_ms = now
        sub.rules[rule.name.lower()] = rule
        self._reroute(entity_path(topic), sub)
        self._save(entity_path(topic))
        return rule

    def delete_rule(self, topic: str, subscription: str, name: str) -> None:
        """Remove a rule; a subscription left without rules takes no messages, as in Azure."""
        sub = self._subscription_or_404(topic, subscription)
        if sub.rules.pop(name.lower(), None) is None:
            raise _missing(f"{topic}/subscriptions/{subscription}/rules/{name}")
        self._reroute(entity_path(topic), sub)
        self._save(entity_path(topic))

    def _topic_or_404(self, topic: str) -> TopicDefinition:
        found = self.topics.get(entity_path(topic))
        if found is None:
            raise _missing(topic)
        return found

    def _subscription_or_404(self, topic: str, subscription: str) -> SubscriptionDefinition:
        found = self._topic_or_404(topic).subscriptions.get(subscription.lower())
        if found is None:
            raise _missing(f"{topic}/subscriptions/{subscription}")
        return found

    # -- the live entities ---------------------------------------------------------------------

    def _install_queue(self, path: str, definition: Definition) -> None:
        settings = queue_settings(
            read_queue({"Name": definition.name, "Properties": definition.properties}, path)
        )
        self._install_receivable(path, settings)

    def _install_receivable(self, path: str, settings: Any) -> Entity:  # noqa: ANN401 - EntitySettings
        entity = self.bus.entities.get(path)
        if entity is None:
            return self._topology.add_receivable(path, settings)
        entity.settings = settings
        if entity.dead_letter is not None:
            entity.dead_letter.settings = dead_letter_settings(settings)
        return entity

    def _install_topic(self, path: str, topic: TopicDefinition) -> None:
        config = read_topic({"Name": topic.definition.name, "Properties": topic.definition.properties}, path)
        entity = self.bus.entities.get(path)
        if entity is None:
            self.bus.entities[path] = Entity(path, topic_settings(config), is_topic=True)
        else:
            entity.settings = topic_settings(config)
        self.bus.routes.setdefault(path, [])
        for sub in topic.subscriptions.values():
            self._install_subscription(path, sub)

    def _install_subscription(self, topic_path: str, sub: SubscriptionDefinition) -> None:
        path = f"{topic_path}/subscriptions/{sub.definition.name.lower()}"
        config = read_subscription(
            {"Name": sub.definition.name, "Properties": sub.definition.properties}, path
        )
        self._install_receivable(path, receiver_settings(config, None))
        self._reroute(topic_path, sub)

    def _reroute(self, topic_path: str, sub: SubscriptionDefinition) -> None:
        path = f"{topic_path}/subscriptions/{sub.definition.name.lower()}"
        entity = self.bus.entities[path]
        fresh = route_for(entity, [_rule_config(rule) for rule in sub.rules.values()])
        routes = self.bus.routes.setdefault(topic_path, [])
        for route in routes:
            if route.subscription is entity:
                route.match, route.takes_plain, route.actions = fresh.match, fresh.takes_plain, fresh.actions
                return
        routes.append(fresh)

    def _remove_live(self, path: str, *, journal: bool = True) -> None:
        for route in self.bus.routes.pop(path, []):
            self._drop_entity(route.subscription.path, journal=journal)
        self._drop_entity(path, journal=journal)

    def _drop_entity(self, path: str, *, journal: bool = True) -> None:
        for each in (path, path + DEAD_LETTER_SUFFIX):
            entity = self.bus.entities.pop(each, None)
            if entity is None:
                continue
            if journal:
                for seq in list(entity.messages):
                    self.journal.delete(each, seq)
            entity.messages.clear()
            entity.locks.clear()
        if journal:
            self.journal.forget(path)

    def _check_forwarding(self, path: str, *targets: str | None) -> None:
        for target in targets:
            if target is None:
                continue
            wanted = entity_path(target)
            if wanted == path:
                raise BrokerError(_BAD, "An entity cannot forward to itself.", status=400)
            if self.kind_of(wanted) is None:
                raise BrokerError(_BAD, f"The forwarding target '{target}' does not exist.", status=400)

    def _save(self, path: str) -> None:
        if path in self.queues:
            document: dict[str, Any] = {"Queue": asdict(self.queues[path])}
        else:
            topic = self.topics[path]
            document = {
                "Topic": asdict(topic.definition),
                "Subscriptions": [
                    {"Subscription": asdict(sub.definition), "Rules": [asdict(r) for r in sub.rules.values()]}
                    for sub in topic.subscriptions.values()
                ],
            }
        self.journal.entity_document(path, json.dumps(document))

    def queue_paths(self) -> Iterator[str]:
        """Queue paths in name order."""
        return iter(sorted(self.queues))

    def topic_paths(self) -> Iterator[str]:
        """Topic paths in name order."""
        return iter(sorted(self.topics))


# -- definitions <-> Config.json ---------------------------------------------------------------


def _definition(raw: Mapping[str, Any]) -> Definition:
    return Definition(
        raw["name"],
        dict(raw["properties"]),
        dict(raw.get("extras", {})),
        {k: list(v) for k, v in raw.get("parameters", {}).items()},
        int(raw.get("created_ms", 0)),
        int(raw.get("updated_ms", 0)),
    )


def _changed(
    old: Definition | None, name: str, properties: dict[str, Any], extras: dict[str, str], now: int
) -> Definition:
    created = old.created_ms if old is not None else now
    return Definition(old.name if old is not None else name, properties, extras, {}, created, now)


def _validated(read: Callable[[Mapping[str, Any], str], Any], node: Mapping[str, Any], name: str) -> Any:  # noqa: ANN401
    try:
        return read(node, name)
    except SandboxConfigError as exc:
        raise BrokerError(_BAD, str(exc), status=400) from exc


def _check_session_kept(entity: Entity | None, requires_session: bool) -> None:
    if entity is not None and entity.settings.requires_session != requires_session:
        raise BrokerError(_BAD, "RequiresSession cannot be changed on an existing entity.", status=400)


def _check_created_only(old: Definition, merged: dict[str, Any]) -> None:
    """Refuse an update that turns duplicate detection on or off, as Service Bus does: "You can't enable or
    disable duplicate detection after the queue or topic is created."
    https://learn.microsoft.com/azure/service-bus-messaging/enable-duplicate-detection
    (Azure answers 400; its wording is not published, so this one is the emulator's own.)"""
    name = "RequiresDuplicateDetection"
    if bool(old.properties.get(name, False)) != bool(merged.get(name, False)):
        raise BrokerError(_BAD, f"{name} cannot be changed on an existing entity.", status=400)


def _missing(name: str) -> BrokerError:
    return BrokerError(_NOT_FOUND, f"The messaging entity '{name}' could not be found.", status=404)


def _subscription_path(topic: str, name: str) -> str:
    return f"{entity_path(topic)}/subscriptions/{name.lower()}"


def _true_rule() -> dict[str, Any]:
    return {"FilterType": "Sql", "SqlFilter": {"SqlExpression": TRUE_EXPRESSION}}


def _rule_config(rule: Definition) -> RuleConfig:
    """The rule as the broker compiles it, its SQL parameters written in as literals; 400 if it is bad."""
    properties = json.loads(json.dumps(rule.properties))
    for key in ("SqlFilter", "Action"):
        if key in properties and rule.parameters:
            text = properties[key]["SqlExpression"]
            properties[key]["SqlExpression"] = substitute_parameters(text, rule.parameters)
    config: RuleConfig = _validated(read_rule, {"Name": rule.name, "Properties": properties}, rule.name)
    return config


def substitute_parameters(expression: str, parameters: Mapping[str, list[str]]) -> str:
    """``expression`` with each ``@name`` outside string literals replaced by its parameter's literal.

    Parameters are ``name -> [xml schema type, text]`` as the administration API carries them.
    """
    out: list[str] = []
    index = 0
    in_string = False
    while index < len(expression):
        char = expression[index]
        if char == "'":
            in_string = not in_string
        if char == "@" and not in_string:
            end = index + 1
            while end < len(expression) and (expression[end].isalnum() or expression[end] == "_"):
                end += 1
            name = expression[index:end]
            found = parameters.get(name) or parameters.get(name[1:])
            if found is None:
                raise BrokerError(_BAD, f"The SQL parameter {name} has no value.", status=400)
            out.append(_literal(*found))
            index = end
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _literal(kind: str, text: str) -> str:
    if kind in {"int", "long", "double"}:
        return text
    if kind == "boolean":
        return "TRUE" if text.lower() == "true" else "FALSE"
    if kind == "string":
        return "'" + text.replace("'", "''") + "'"
    raise BrokerError(_BAD, f"SQL parameters of type {kind} are not supported by the emulator.", status=400)


def format_duration(value: timedelta) -> str:
    """An ISO 8601 duration as Azure writes them (``PT1M``, ``P14D``, ``PT0.5S``)."""
    total = value.total_seconds()
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{int(days)}D" if days else "")
    clock = (f"{int(hours)}H" if hours else "") + (f"{int(minutes)}M" if minutes else "")
    if seconds:
        clock += f"{seconds:g}S" if seconds != int(seconds) else f"{int(seconds)}S"
    if clock:
        text += "T" + clock
    return text if text != "P" else "PT0S"


def _queue_node(queue: QueueConfig) -> dict[str, Any]:
    return {
        "LockDuration": format_duration(queue.lock_duration),
        "MaxDeliveryCount": queue.max_delivery_count,
        "RequiresSession": queue.requires_session,
        "DefaultMessageTimeToLive": format_duration(queue.default_message_time_to_live),
        "DeadLetteringOnMessageExpiration": queue.dead_lettering_on_message_expiration,
        "RequiresDuplicateDetection": queue.requires_duplicate_detection,
        "DuplicateDetectionHistoryTimeWindow": format_duration(queue.duplicate_detection_history_time_window),
        **_forwarding(queue),
    }


def _forwarding(config: QueueConfig | SubscriptionConfig) -> dict[str, Any]:
    out = {}
    if config.forward_to:
        out["ForwardTo"] = config.forward_to
    if config.forward_dead_lettered_messages_to:
        out["ForwardDeadLetteredMessagesTo"] = config.forward_dead_lettered_messages_to
    return out


def _topic_definition(topic: TopicConfig, now: int) -> TopicDefinition:
    properties = {
        "DefaultMessageTimeToLive": format_duration(topic.default_message_time_to_live),
        "RequiresDuplicateDetection": topic.requires_duplicate_detection,
        "DuplicateDetectionHistoryTimeWindow": format_duration(topic.duplicate_detection_history_time_window),
    }
    result = TopicDefinition(Definition(topic.name, properties, {}, {}, now, now))
    for sub in topic.subscriptions:
        sub_props = {
            "LockDuration": format_duration(sub.lock_duration),
            "MaxDeliveryCount": sub.max_delivery_count,
            "RequiresSession": sub.requires_session,
            "DefaultMessageTimeToLive": format_duration(sub.default_message_time_to_live),
            "DeadLetteringOnMessageExpiration": sub.dead_lettering_on_message_expiration,
            **_forwarding(sub),
        }
        sub_def = SubscriptionDefinition(Definition(sub.name, sub_props, {}, {}, now, now))
        # A configured subscription without rules has Azure's $Default match-all rule.
        rules = sub.rules or [
            RuleConfig(name=DEFAULT_RULE, filter=SqlFilterConfig(expression=TRUE_EXPRESSION))
        ]
        for rule in rules:
            sub_def.rules[rule.name.lower()] = Definition(rule.name, rule_node(rule), {}, {}, now, now)
        result.subscriptions[sub.name.lower()] = sub_def
    return result


def rule_node(rule: RuleConfig) -> dict[str, Any]:
    """A rule's Config.json Properties."""
    node: dict[str, Any]
    if isinstance(rule.filter, SqlFilterConfig):
        node = {"FilterType": "Sql", "SqlFilter": {"SqlExpression": rule.filter.expression}}
    else:
        node = {"FilterType": "Correlation", "CorrelationFilter": _correlation_node(rule.filter)}
    if rule.action is not None:
        node["Action"] = {"SqlExpression": rule.action}
    return node


def _correlation_node(spec: CorrelationFilterConfig) -> dict[str, Any]:
    keys = {
        "ContentType": spec.content_type,
        "CorrelationId": spec.correlation_id,
        "Label": spec.label,
        "MessageId": spec.message_id,
        "ReplyTo": spec.reply_to,
        "ReplyToSessionId": spec.reply_to_session_id,
        "SessionId": spec.session_id,
        "To": spec.to,
    }
    node: dict[str, Any] = {key: value for key, value in keys.items() if value is not None}
    if spec.properties:
        node["Properties"] = dict(spec.properties)
    return node
