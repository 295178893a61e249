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
from typing import Any, NoReturn, TypeAlias

from sandbox.errors import SandboxConfigError
from sandbox.servicebus import _sql, _sql_action

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
]

DEFAULT_NAMESPACE = "sbemulatorns"

# Azure's naming rules: queues and topics up to 260 characters and may hold "/", subscriptions and rules
# up to 50 and may not; all start and end with a letter or digit. Namespaces: 6-50, letters, digits, "-".
_ENTITY_NAME = re.compile(r"[A-Za-z0-9](?:[\w.\-/]*[A-Za-z0-9])?", re.ASCII)
_LEAF_NAME = re.compile(r"[A-Za-z0-9](?:[\w.\-]*[A-Za-z0-9])?", re.ASCII)
_NAMESPACE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-]{4,48}[A-Za-z0-9]", re.ASCII)
_DURATION = re.compile(
    r"P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?",
    re.ASCII,
)
_MAX_ENTITIES = 10_000
_MAX_SUBSCRIPTIONS = 2_000
_MAX_SQL_LENGTH = 1_024
_LOCK_RANGE = (timedelta(seconds=5), timedelta(minutes=5))
# The official emulator's schema allows 5 s, below Azure's 20 s; 7 days is Azure's maximum.
_DEDUP_RANGE = (timedelta(seconds=5), timedelta(days=7))

_ONE_SECOND = timedelta(seconds=1)
_Reader: TypeAlias = Callable[[object, str], Any]
_Field: TypeAlias = tuple[str, _Reader]  # the dataclass attribute and the reader of its JSON value
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
        _fail("UserConfig", "required: the document is a JSON object with a UserConfig key")
    for key in document:
        if key not in {"UserConfig", "$schema"}:  # editors add "$schema"; it carries no configuration
            _fail(key, "unknown key; expected UserConfig")
    user = _object(document["UserConfig"], "UserConfig", {"Namespaces", "Logging"})
    if "Logging" in user:
        _object(user["Logging"], "UserConfig.Logging", {"Type"})
    items = _array(user, "Namespaces", "UserConfig", required=True)
    if not items:
        _fail("UserConfig.Namespaces", "at least one namespace is required")
    namespaces = [_namespace(item, f"UserConfig.Namespaces[{i}]") for i, item in enumerate(items)]
    _unique([ns.name for ns in namespaces], "UserConfig.Namespaces", "namespace")
    return EmulatorConfig(namespaces=namespaces)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration such as ``PT1M`` or ``P14D`` (a year is 365 days, a month 30, as .NET's)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT1M or P14D")
    years, months, weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    try:
        return timedelta(
            days=years * 365 + months * 30 + weeks * 7 + days, hours=hours, minutes=minutes, seconds=seconds
        )
    except OverflowError as exc:
        raise ValueError(f"{text!r} is too long a duration") from exc


def _read_json(path: pathlib.Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SandboxConfigError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SandboxConfigError(f"{path}: not valid JSON: {exc}") from exc


def _namespace(value: object, path: str) -> NamespaceConfig:
    node = _object(value, path, {"Name", "Queues", "Topics"})
    name = _name(node, path, _NAMESPACE_NAME, 50)
    queues = [_queue(q, f"{path}.Queues[{i}]") for i, q in enumerate(_array(node, "Queues", path))]
    topics = [_topic(t, f"{path}.Topics[{i}]") for i, t in enumerate(_array(node, "Topics", path))]
    entity_names = [q.name for q in queues] + [t.name for t in topics]
    if len(entity_names) > _MAX_ENTITIES:
        _fail(path, f"{len(entity_names)} queues and topics, Azure allows {_MAX_ENTITIES} per namespace")
    _unique(entity_names, path, "queue or topic")
    _check_forwarding(queues, topics, path)
    return NamespaceConfig(name=name, queues=queues, topics=topics)


def _queue(value: object, path: str) -> QueueConfig:
    node = _object(value, path, {"Name", "Properties"})
    return QueueConfig(name=_name(node, path, _ENTITY_NAME, 260), **_properties(node, path, _QUEUE))


def _topic(value: object, path: str) -> TopicConfig:
    node = _object(value, path, {"Name", "Properties", "Subscriptions"})
    items = _array(node, "Subscriptions", path)
    if len(items) > _MAX_SUBSCRIPTIONS:
        _fail(f"{path}.Subscriptions", f"{len(items)} subscriptions, Azure allows {_MAX_SUBSCRIPTIONS}")
    subscriptions = [_subscription(s, f"{path}.Subscriptions[{i}]") for i, s in enumerate(items)]
    _unique([s.name for s in subscriptions], f"{path}.Subscriptions", "subscription")
    return TopicConfig(
        name=_name(node, path, _ENTITY_NAME, 260),
        subscriptions=subscriptions,
        **_properties(node, path, _TOPIC),
    )


def _subscription(value: object, path: str) -> SubscriptionConfig:
    node = _object(value, path, {"Name", "Properties", "Rules"})
    rules = [_rule(r, f"{path}.Rules[{i}]") for i, r in enumerate(_array(node, "Rules", path))]
    _unique([r.name for r in rules], f"{path}.Rules", "rule")
    return SubscriptionConfig(
        name=_name(node, path, _LEAF_NAME, 50), rules=rules, **_properties(node, path, _SUBSCRIPTION)
    )


def _rule(value: object, path: str) -> RuleConfig:
    node = _object(value, path, {"Name", "Properties"})
    name = node.get("Name")
    if name != "$Default":  # Azure's reserved name for the match-all rule is allowed as is
        name = _name(node, path, _LEAF_NAME, 50)
    at = f"{path}.Properties"
    props = _object(
        _require(node, "Properties", path), at, {"FilterType", "CorrelationFilter", "SqlFilter", "Action"}
    )
    kind = _require(props, "FilterType", at)
    if kind == "Correlation":
        rule_filter: CorrelationFilterConfig | SqlFilterConfig = _correlation(props, at)
    elif kind == "Sql":
        rule_filter = _sql_filter(props, at, name)
    else:
        _fail(f"{at}.FilterType", f"expected 'Correlation' or 'Sql', got {kind!r}")
    return RuleConfig(name=name, filter=rule_filter, action=_action(props, at, name))


def _correlation(props: Mapping[str, Any], at: str) -> CorrelationFilterConfig:
    path = f"{at}.CorrelationFilter"
    node = _object(_require(props, "CorrelationFilter", at), path, {*_CORRELATION_KEYS, "Properties"})
    if not node:
        _fail(path, "a correlation filter needs at least one property to match")
    fields = {
        attr: _string(node[key], f"{path}.{key}") for key, attr in _CORRELATION_KEYS.items() if key in node
    }
    user = _object(node.get("Properties", {}), f"{path}.Properties", None)
    for key, item in user.items():
        if isinstance(item, dict | list) or item is None:
            _fail(f"{path}.Properties.{key}", f"expected a string, number or boolean, got {item!r}")
    return CorrelationFilterConfig(properties=dict(user), **fields)


def _sql_filter(props: Mapping[str, Any], at: str, rule: str) -> SqlFilterConfig:
    path = f"{at}.SqlFilter"
    node = _object(_require(props, "SqlFilter", at), path, {"SqlExpression"})
    expression = _sql_text(node, path)
    _check_sql(_sql.parse_filter, expression, f"{path}.SqlExpression", rule)
    return SqlFilterConfig(expression=expression)


def _action(props: Mapping[str, Any], at: str, rule: str) -> str | None:
    if "Action" not in props:
        return None
    path = f"{at}.Action"
    expression = _sql_text(_object(props["Action"], path, {"SqlExpression"}), path)
    _check_sql(_sql_action.parse_action, expression, f"{path}.SqlExpression", rule)
    return expression


def _check_sql(parse: Callable[[str], object], expression: str, path: str, rule: str) -> None:
    """Refuse, at load time, SQL outside the supported subset, naming the rule and the construct."""
    try:
        parse(expression)
    except SandboxConfigError as exc:
        _fail(path, f"rule {rule!r}: {exc}")


def _sql_text(node: Mapping[str, Any], path: str) -> str:
    expression = _require(node, "SqlExpression", path)
    if not isinstance(expression, str) or not expression.strip():
        _fail(f"{path}.SqlExpression", f"expected a SQL expression, got {expression!r}")
    if len(expression) > _MAX_SQL_LENGTH:
        _fail(f"{path}.SqlExpression", f"{len(expression)} characters, Azure allows {_MAX_SQL_LENGTH}")
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
                _fail(f"{at}.Properties.{key}", f"no queue or topic named {target!r} in this namespace")
            if target is not None and target.casefold() == own.casefold():
                _fail(f"{at}.Properties.{key}", "an entity cannot forward to itself")


# -- typed readers: each names the JSON path of what it rejects ---------------------------------------


def _fail(path: str, message: str) -> NoReturn:
    raise SandboxConfigError(f"{path}: {message}")


def _object(value: object, path: str, allowed: set[str] | frozenset[str] | None) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        _fail(path, f"expected a JSON object, got {type(value).__name__}")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                _fail(f"{path}.{key}", f"unknown key; expected one of {', '.join(sorted(allowed))}")
    return dict(value)


def _require(node: Mapping[str, Any], key: str, path: str) -> object:
    if key not in node:
        _fail(f"{path}.{key}", "required")
    return node[key]


def _array(node: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any]:
    value = _require(node, key, path) if required else node.get(key, [])
    if not isinstance(value, list):
        _fail(f"{path}.{key}", f"expected a JSON array, got {type(value).__name__}")
    return value


def _name(node: Mapping[str, Any], path: str, pattern: re.Pattern[str], limit: int) -> str:
    value = _require(node, "Name", path)
    if not isinstance(value, str) or not pattern.fullmatch(value) or len(value) > limit:
        _fail(
            f"{path}.Name",
            f"{value!r} is not a valid name (at most {limit} letters, digits, '.', '-', '_', "
            "starting and ending with a letter or digit)",
        )
    return value


def _properties(node: Mapping[str, Any], path: str, spec: Mapping[str, _Field]) -> dict[str, Any]:
    """Read an entity's Properties by its table; absent keys keep the dataclass (schema) defaults."""
    at = f"{path}.Properties"
    props = _object(node.get("Properties", {}), at, frozenset(spec))
    return {spec[key][0]: spec[key][1](value, f"{at}.{key}") for key, value in props.items()}


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"expected true or false, got {value!r}")
    return value


def _count(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, f"expected an integer, got {value!r}")
    if value < 1:
        _fail(path, f"must be at least 1, got {value}")
    return value


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {value!r}")
    return value


def _entity_ref(value: object, path: str) -> str | None:
    """A forwarding target; the schema writes "none" as an empty string."""
    return _string(value, path) or None


def _span(low: timedelta, high: timedelta) -> _Reader:
    """A reader of ISO 8601 durations within Azure's bounds."""

    def read(value: object, path: str) -> timedelta:
        try:
            duration = parse_duration(_string(value, path))
        except ValueError as exc:
            _fail(path, str(exc))
        if not low <= duration <= high:
            _fail(path, f"{value} is outside Azure's range {low} .. {high}")
        return duration

    return read


def _unique(names: list[str], path: str, kind: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            _fail(path, f"{kind} name {name!r} is used twice (names are case-insensitive)")
        seen.add(name.casefold())


# The Properties each entity kind accepts (the official schema's keys) and how each is read.
_TTL: dict[str, _Field] = {
    "DefaultMessageTimeToLive": ("default_message_time_to_live", _span(_ONE_SECOND, timedelta.max)),
}
_DEDUPLICATION: dict[str, _Field] = {
    "RequiresDuplicateDetection": ("requires_duplicate_detection", _boolean),
    "DuplicateDetectionHistoryTimeWindow": ("duplicate_detection_history_time_window", _span(*_DEDUP_RANGE)),
}
_RECEIVER: dict[str, _Field] = {
    "LockDuration": ("lock_duration", _span(*_LOCK_RANGE)),
    "MaxDeliveryCount": ("max_delivery_count", _count),
    "RequiresSession": ("requires_session", _boolean),
    "DeadLetteringOnMessageExpiration": ("dead_lettering_on_message_expiration", _boolean),
    "ForwardTo": ("forward_to", _entity_ref),
    "ForwardDeadLetteredMessagesTo": ("forward_dead_lettered_messages_to", _entity_ref),
}
_QUEUE = _TTL | _DEDUPLICATION | _RECEIVER
_TOPIC = _TTL | _DEDUPLICATION
_SUBSCRIPTION = _TTL | _RECEIVER
