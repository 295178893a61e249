"""The official Service Bus emulator's ``Config.json``, read into typed and validated entity definitions.

The format is Microsoft's, so a file written for that emulator loads here unchanged:
https://learn.microsoft.com/azure/service-bus-messaging/test-locally-with-service-bus-emulator and the
JSON schema in Azure/azure-service-bus-emulator-installer (``ServiceBus-Emulator/Schema/Config-schema.json``).
Defaults are that schema's. Limits are Azure's
(https://learn.microsoft.com/azure/service-bus-messaging/service-bus-quotas), not the official emulator's
narrower ones (one namespace, 50 entities, a one-hour TTL), which this emulator lifts. Keys outside the
schema are refused: a misspelt ``RequiresSesion`` silently ignored would be a worse surprise. Every error
names the JSON path of the bad value, e.g. ``UserConfig.Namespaces[0].Queues[1].Properties.LockDuration``.
The file's shape is checked by the pydantic models of ``config_json.py``; what spans entities (unique
names, forwarding targets, SQL within the supported subset) is checked here.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus import _sql, _sql_action
from dualbus.sandbox.servicebus.config_json import (
    ConfigDocument,
    NamespaceJson,
    QueueJson,
    RuleJson,
    SubscriptionJson,
    TopicJson,
    parse_duration,
    validate,
)

__all__ = [
    "CorrelationFilterConfig",
    "EmulatorConfig",
    "NamespaceConfig",
    "QueueConfig",
    "RuleConfig",
    "SqlFilterConfig",
    "SubscriptionConfig",
    "TopicConfig",
    "default_config",
    "load_config",
    "parse_duration",
    "read_queue",
    "read_rule",
    "read_subscription",
    "read_topic",
]

DEFAULT_NAMESPACE = "sbemulatorns"

_MAX_ENTITIES = 10_000
_MAX_SUBSCRIPTIONS = 2_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CorrelationFilterConfig:
    """Matches when every given system property equals its value and every user property too."""

    content_type: str | None = None
    correlation_id: str | None = None
    label: str | None = None
    message_id: str | None = None
    reply_to: str | None = None
    reply_to_session_id: str | None = None
    session_id: str | None = None
    to: str | None = None
    properties: Mapping[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SqlFilterConfig:
    """A SQL filter expression, already checked to lie in the supported subset."""

    expression: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleConfig:
    """A subscription rule: a filter and an optional SQL action (``SET``/``REMOVE``) text."""

    name: str
    filter: CorrelationFilterConfig | SqlFilterConfig
    action: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """A queue and the properties the emulator honours."""

    name: str
    lock_duration: timedelta = timedelta(minutes=1)
    max_delivery_count: int = 3
    requires_session: bool = False
    default_message_time_to_live: timedelta = timedelta(hours=1)
    dead_lettering_on_message_expiration: bool = False
    requires_duplicate_detection: bool = False
    duplicate_detection_history_time_window: timedelta = timedelta(seconds=20)
    forward_to: str | None = None
    forward_dead_lettered_messages_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionConfig:
    """A topic subscription; no rules means the ``$Default`` rule that matches every message."""

    name: str
    lock_duration: timedelta = timedelta(minutes=1)
    max_delivery_count: int = 3
    requires_session: bool = False
    default_message_time_to_live: timedelta = timedelta(hours=1)
    dead_lettering_on_message_expiration: bool = False
    forward_to: str | None = None
    forward_dead_lettered_messages_to: str | None = None
    rules: list[RuleConfig] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicConfig:
    """A topic and its subscriptions."""

    name: str
    default_message_time_to_live: timedelta = timedelta(hours=1)
    requires_duplicate_detection: bool = False
    duplicate_detection_history_time_window: timedelta = timedelta(seconds=20)
    subscriptions: list[SubscriptionConfig] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceConfig:
    """One namespace: its queues and topics."""

    name: str
    queues: list[QueueConfig] = field(default_factory=list)
    topics: list[TopicConfig] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """The whole emulator configuration."""

    namespaces: list[NamespaceConfig]


def default_config() -> EmulatorConfig:
    """The configuration used when none is given: the official emulator's namespace, no entities."""
    return EmulatorConfig(namespaces=[NamespaceConfig(name=DEFAULT_NAMESPACE)])


def load_config(source: pathlib.Path | str | Mapping[str, Any]) -> EmulatorConfig:
    """Read and validate a Config.json (a path, or the already-parsed JSON); raise SandboxConfigError."""
    document = source if isinstance(source, Mapping) else _read_json(pathlib.Path(source))
    if not isinstance(document, Mapping) or "UserConfig" not in document:
        raise SandboxConfigError("UserConfig: required: the document is a JSON object with a UserConfig key")
    user = validate(ConfigDocument, document).user_config
    namespaces = [_namespace(ns, f"UserConfig.Namespaces[{i}]") for i, ns in enumerate(user.namespaces)]
    _unique([ns.name for ns in namespaces], "UserConfig.Namespaces", "namespace")
    return EmulatorConfig(namespaces=namespaces)


def _read_json(path: pathlib.Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SandboxConfigError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SandboxConfigError(f"{path}: not valid JSON: {exc}") from exc


def _fail(path: str, message: str) -> NoReturn:
    raise SandboxConfigError(f"{path}: {message}")


def _unique(names: list[str], path: str, kind: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            _fail(path, f"{kind} name {name!r} is used twice (names are case-insensitive)")
        seen.add(name.casefold())


def _namespace(node: NamespaceJson, path: str) -> NamespaceConfig:
    queues = [_queue(q) for q in node.queues]
    topics = [_topic(t, f"{path}.Topics[{i}]") for i, t in enumerate(node.topics)]
    entity_names = [q.name for q in queues] + [t.name for t in topics]
    if len(entity_names) > _MAX_ENTITIES:
        _fail(path, f"{len(entity_names)} queues and topics, Azure allows {_MAX_ENTITIES} per namespace")
    _unique(entity_names, path, "queue or topic")
    _check_forwarding(queues, topics, path)
    return NamespaceConfig(name=node.name, queues=queues, topics=topics)


def _queue(node: QueueJson) -> QueueConfig:
    return QueueConfig(name=node.name, **node.properties.model_dump())


def _topic(node: TopicJson, path: str) -> TopicConfig:
    if len(node.subscriptions) > _MAX_SUBSCRIPTIONS:
        count = len(node.subscriptions)
        _fail(f"{path}.Subscriptions", f"{count} subscriptions, Azure allows {_MAX_SUBSCRIPTIONS}")
    subscriptions = [_subscription(s, f"{path}.Subscriptions[{i}]") for i, s in enumerate(node.subscriptions)]
    _unique([s.name for s in subscriptions], f"{path}.Subscriptions", "subscription")
    return TopicConfig(name=node.name, subscriptions=subscriptions, **node.properties.model_dump())


def _subscription(node: SubscriptionJson, path: str) -> SubscriptionConfig:
    rules = [_rule(r, f"{path}.Rules[{i}]") for i, r in enumerate(node.rules)]
    _unique([r.name for r in rules], f"{path}.Rules", "rule")
    return SubscriptionConfig(name=node.name, rules=rules, **node.properties.model_dump())


def _rule(node: RuleJson, path: str) -> RuleConfig:
    at = f"{path}.Properties"
    props = node.properties
    rule_filter: CorrelationFilterConfig | SqlFilterConfig
    if props.filter_type == "Correlation":
        if props.correlation_filter is None:
            _fail(f"{at}.CorrelationFilter", "required")
        rule_filter = CorrelationFilterConfig(**props.correlation_filter.model_dump())
    else:
        if props.sql_filter is None:
            _fail(f"{at}.SqlFilter", "required")
        expression = props.sql_filter.sql_expression
        _check_sql(_sql.parse_filter, expression, f"{at}.SqlFilter.SqlExpression", node.name)
        rule_filter = SqlFilterConfig(expression=expression)
    action = props.action.sql_expression if props.action is not None else None
    if action is not None:
        _check_sql(_sql_action.parse_action, action, f"{at}.Action.SqlExpression", node.name)
    return RuleConfig(name=node.name, filter=rule_filter, action=action)


def _check_sql(parse: Callable[[str], object], expression: str, path: str, rule: str) -> None:
    """Refuse, at load time, SQL outside the supported subset, naming the rule and the construct."""
    try:
        parse(expression)
    except SandboxConfigError as exc:
        _fail(path, f"rule {rule!r}: {exc}")


def _check_forwarding(queues: list[QueueConfig], topics: list[TopicConfig], path: str) -> None:
    """Azure refuses a forward to an entity that does not exist, or to the entity itself."""
    targets = {name.casefold() for name in [q.name for q in queues] + [t.name for t in topics]}
    sources: list[tuple[str, str, QueueConfig | SubscriptionConfig]] = [
        (f"{path}.Queues[{i}]", q.name, q) for i, q in enumerate(queues)
    ]
    for i, topic in enumerate(topics):
        sources += [
            (f"{path}.Topics[{i}].Subscriptions[{j}]", "", s) for j, s in enumerate(topic.subscriptions)
        ]
    for at, own, entity in sources:
        for key, target in (
            ("ForwardTo", entity.forward_to),
            ("ForwardDeadLetteredMessagesTo", entity.forward_dead_lettered_messages_to),
        ):
            if target is not None and target.casefold() not in targets:
                _fail(f"{at}.Properties.{key}", f"no queue or topic named {target!r} in this namespace")
            if target is not None and target.casefold() == own.casefold():
                _fail(f"{at}.Properties.{key}", "an entity cannot forward to itself")


def read_queue(node: Mapping[str, Any], path: str) -> QueueConfig:
    """One queue in Config.json form (``{"Name": ..., "Properties": {...}}``), validated."""
    return _queue(validate(QueueJson, node, path))


def read_topic(node: Mapping[str, Any], path: str) -> TopicConfig:
    """One topic in Config.json form, with its subscriptions, validated."""
    return _topic(validate(TopicJson, node, path), path)


def read_subscription(node: Mapping[str, Any], path: str) -> SubscriptionConfig:
    """One subscription in Config.json form, with its rules, validated."""
    return _subscription(validate(SubscriptionJson, node, path), path)


def read_rule(node: Mapping[str, Any], path: str) -> RuleConfig:
    """One rule in Config.json form, validated (its SQL within the supported subset)."""
    return _rule(validate(RuleJson, node, path), path)
