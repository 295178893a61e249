"""The official Service Bus emulator's ``Config.json``, read into typed and validated entity definitions.

The format is Microsoft's, so a file written for that emulator loads here unchanged:
https://learn.microsoft.com/azure/service-bus-messaging/test-locally-with-service-bus-emulator and the
JSON schema in Azure/azure-service-bus-emulator-installer (``ServiceBus-Emulator/Schema/Config-schema.json``).
Defaults are that schema's. Limits are Azure's
(https://learn.microsoft.com/azure/service-bus-messaging/service-bus-quotas), not the official emulator's
narrower ones (one namespace, 50 entities, a one-hour TTL), which this emulator lifts. Keys outside the
schema are refused: a misspelt ``RequiresSesion`` silently ignored would be a worse surprise. Every error
names the JSON path of the bad value, e.g. ``UserConfig.Namespaces[0].Queues[1].Properties.LockDuration``.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus import _json_readers as _read
from dualbus.sandbox.servicebus import _sql, _sql_action
from dualbus.sandbox.servicebus._json_readers import parse_duration

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

# Azure's naming rules: queues and topics up to 260 characters and may hold "/", subscriptions and rules
# up to 50 and may not; all start and end with a letter or digit. Namespaces: 6-50, letters, digits, "-".
_ENTITY_NAME = re.compile(r"[A-Za-z0-9](?:[\w.\-/]*[A-Za-z0-9])?", re.ASCII)
_LEAF_NAME = re.compile(r"[A-Za-z0-9](?:[\w.\-]*[A-Za-z0-9])?", re.ASCII)
_NAMESPACE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-]{4,48}[A-Za-z0-9]", re.ASCII)
_MAX_ENTITIES = 10_000
_MAX_SUBSCRIPTIONS = 2_000
_MAX_SQL_LENGTH = 1_024
_LOCK_RANGE = (timedelta(seconds=5), timedelta(minutes=5))
# The official emulator's schema allows 5 s, below Azure's 20 s; 7 days is Azure's maximum.
_DEDUP_RANGE = (timedelta(seconds=5), timedelta(days=7))

_ONE_SECOND = timedelta(seconds=1)
_CORRELATION_KEYS = {
    "ContentType": "content_type",
    "CorrelationId": "correlation_id",
    "Label": "label",
    "MessageId": "message_id",
    "ReplyTo": "reply_to",
    "ReplyToSessionId": "reply_to_session_id",
    "SessionId": "session_id",
    "To": "to",
}


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
        _read.fail("UserConfig", "required: the document is a JSON object with a UserConfig key")
    for key in document:
        if key not in {"UserConfig", "$schema"}:  # editors add "$schema"; it carries no configuration
            _read.fail(key, "unknown key; expected UserConfig")
    user = _read.object_(document["UserConfig"], "UserConfig", {"Namespaces", "Logging"})
    if "Logging" in user:
        _read.object_(user["Logging"], "UserConfig.Logging", {"Type"})
    items = _read.array(user, "Namespaces", "UserConfig", required=True)
    if not items:
        _read.fail("UserConfig.Namespaces", "at least one namespace is required")
    namespaces = [_namespace(item, f"UserConfig.Namespaces[{i}]") for i, item in enumerate(items)]
    _read.unique([ns.name for ns in namespaces], "UserConfig.Namespaces", "namespace")
    return EmulatorConfig(namespaces=namespaces)


def _read_json(path: pathlib.Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SandboxConfigError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SandboxConfigError(f"{path}: not valid JSON: {exc}") from exc


def _namespace(value: object, path: str) -> NamespaceConfig:
    node = _read.object_(value, path, {"Name", "Queues", "Topics"})
    name = _read.name(node, path, _NAMESPACE_NAME, 50)
    queues = [_queue(q, f"{path}.Queues[{i}]") for i, q in enumerate(_read.array(node, "Queues", path))]
    topics = [_topic(t, f"{path}.Topics[{i}]") for i, t in enumerate(_read.array(node, "Topics", path))]
    entity_names = [q.name for q in queues] + [t.name for t in topics]
    if len(entity_names) > _MAX_ENTITIES:
        _read.fail(path, f"{len(entity_names)} queues and topics, Azure allows {_MAX_ENTITIES} per namespace")
    _read.unique(entity_names, path, "queue or topic")
    _check_forwarding(queues, topics, path)
    return NamespaceConfig(name=name, queues=queues, topics=topics)


def _queue(value: object, path: str) -> QueueConfig:
    node = _read.object_(value, path, {"Name", "Properties"})
    return QueueConfig(name=_read.name(node, path, _ENTITY_NAME, 260), **_read.properties(node, path, _QUEUE))


def _topic(value: object, path: str) -> TopicConfig:
    node = _read.object_(value, path, {"Name", "Properties", "Subscriptions"})
    items = _read.array(node, "Subscriptions", path)
    if len(items) > _MAX_SUBSCRIPTIONS:
        _read.fail(f"{path}.Subscriptions", f"{len(items)} subscriptions, Azure allows {_MAX_SUBSCRIPTIONS}")
    subscriptions = [_subscription(s, f"{path}.Subscriptions[{i}]") for i, s in enumerate(items)]
    _read.unique([s.name for s in subscriptions], f"{path}.Subscriptions", "subscription")
    return TopicConfig(
        name=_read.name(node, path, _ENTITY_NAME, 260),
        subscriptions=subscriptions,
        **_read.properties(node, path, _TOPIC),
    )


def _subscription(value: object, path: str) -> SubscriptionConfig:
    node = _read.object_(value, path, {"Name", "Properties", "Rules"})
    rules = [_rule(r, f"{path}.Rules[{i}]") for i, r in enumerate(_read.array(node, "Rules", path))]
    _read.unique([r.name for r in rules], f"{path}.Rules", "rule")
    return SubscriptionConfig(
        name=_read.name(node, path, _LEAF_NAME, 50),
        rules=rules,
        **_read.properties(node, path, _SUBSCRIPTION),
    )


def _rule(value: object, path: str) -> RuleConfig:
    node = _read.object_(value, path, {"Name", "Properties"})
    name = node.get("Name")
    if name != "$Default":  # Azure's reserved name for the match-all rule is allowed as is
        name = _read.name(node, path, _LEAF_NAME, 50)
    at = f"{path}.Properties"
    props = _read.object_(
        _read.require(node, "Properties", path),
        at,
        {"FilterType", "CorrelationFilter", "SqlFilter", "Action"},
    )
    kind = _read.require(props, "FilterType", at)
    if kind == "Correlation":
        rule_filter: CorrelationFilterConfig | SqlFilterConfig = _correlation(props, at)
    elif kind == "Sql":
        rule_filter = _sql_filter(props, at, name)
    else:
        _read.fail(f"{at}.FilterType", f"expected 'Correlation' or 'Sql', got {kind!r}")
    return RuleConfig(name=name, filter=rule_filter, action=_action(props, at, name))


def _correlation(props: Mapping[str, Any], at: str) -> CorrelationFilterConfig:
    path = f"{at}.CorrelationFilter"
    node = _read.object_(
        _read.require(props, "CorrelationFilter", at), path, {*_CORRELATION_KEYS, "Properties"}
    )
    if not node:
        _read.fail(path, "a correlation filter needs at least one property to match")
    fields = {
        attr: _read.string(node[key], f"{path}.{key}")
        for key, attr in _CORRELATION_KEYS.items()
        if key in node
    }
    user = _read.object_(node.get("Properties", {}), f"{path}.Properties", None)
    for key, item in user.items():
        if isinstance(item, dict | list) or item is None:
            _read.fail(f"{path}.Properties.{key}", f"expected a string, number or boolean, got {item!r}")
    return CorrelationFilterConfig(properties=dict(user), **fields)


def _sql_filter(props: Mapping[str, Any], at: str, rule: str) -> SqlFilterConfig:
    path = f"{at}.SqlFilter"
    node = _read.object_(_read.require(props, "SqlFilter", at), path, {"SqlExpression"})
    expression = _sql_text(node, path)
    _check_sql(_sql.parse_filter, expression, f"{path}.SqlExpression", rule)
    return SqlFilterConfig(expression=expression)


def _action(props: Mapping[str, Any], at: str, rule: str) -> str | None:
    if "Action" not in props:
        return None
    path = f"{at}.Action"
    expression = _sql_text(_read.object_(props["Action"], path, {"SqlExpression"}), path)
    _check_sql(_sql_action.parse_action, expression, f"{path}.SqlExpression", rule)
    return expression


def _check_sql(parse: Callable[[str], object], expression: str, path: str, rule: str) -> None:
    """Refuse, at load time, SQL outside the supported subset, naming the rule and the construct."""
    try:
        parse(expression)
    except SandboxConfigError as exc:
        _read.fail(path, f"rule {rule!r}: {exc}")


def _sql_text(node: Mapping[str, Any], path: str) -> str:
    expression = _read.require(node, "SqlExpression", path)
    if not isinstance(expression, str) or not expression.strip():
        _read.fail(f"{path}.SqlExpression", f"expected a SQL expression, got {expression!r}")
    if len(expression) > _MAX_SQL_LENGTH:
        _read.fail(f"{path}.SqlExpression", f"{len(expression)} characters, Azure allows {_MAX_SQL_LENGTH}")
    return expression


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
                _read.fail(f"{at}.Properties.{key}", f"no queue or topic named {target!r} in this namespace")
            if target is not None and target.casefold() == own.casefold():
                _read.fail(f"{at}.Properties.{key}", "an entity cannot forward to itself")


def read_queue(node: Mapping[str, Any], path: str) -> QueueConfig:
    """One queue in Config.json form (``{"Name": ..., "Properties": {...}}``), validated."""
    return _queue(node, path)


def read_topic(node: Mapping[str, Any], path: str) -> TopicConfig:
    """One topic in Config.json form, with its subscriptions, validated."""
    return _topic(node, path)


def read_subscription(node: Mapping[str, Any], path: str) -> SubscriptionConfig:
    """One subscription in Config.json form, with its rules, validated."""
    return _subscription(node, path)


def read_rule(node: Mapping[str, Any], path: str) -> RuleConfig:
    """One rule in Config.json form, validated (its SQL within the supported subset)."""
    return _rule(node, path)


# The Properties each entity kind accepts (the official schema's keys) and how each is read.
_TTL: dict[str, _read.Field] = {
    "DefaultMessageTimeToLive": ("default_message_time_to_live", _read.span(_ONE_SECOND, timedelta.max)),
}
_DEDUPLICATION: dict[str, _read.Field] = {
    "RequiresDuplicateDetection": ("requires_duplicate_detection", _read.boolean),
    "DuplicateDetectionHistoryTimeWindow": (
        "duplicate_detection_history_time_window",
        _read.span(*_DEDUP_RANGE),
    ),
}
_RECEIVER: dict[str, _read.Field] = {
    "LockDuration": ("lock_duration", _read.span(*_LOCK_RANGE)),
    "MaxDeliveryCount": ("max_delivery_count", _read.count),
    "RequiresSession": ("requires_session", _read.boolean),
    "DeadLetteringOnMessageExpiration": ("dead_lettering_on_message_expiration", _read.boolean),
    "ForwardTo": ("forward_to", _read.entity_ref),
    "ForwardDeadLetteredMessagesTo": ("forward_dead_lettered_messages_to", _read.entity_ref),
}
_QUEUE = _TTL | _DEDUPLICATION | _RECEIVER
_TOPIC = _TTL | _DEDUPLICATION
_SUBSCRIPTION = _TTL | _RECEIVER
