"""Microsoft's emulator ``Config.json`` as pydantic models: the JSON keys are the aliases, types are strict.

Keys and defaults are those of the official schema, Azure/azure-service-bus-emulator-installer
``ServiceBus-Emulator/Schema/Config-schema.json`` (see ``config.py``); a key outside it is refused.
:func:`validate` turns pydantic's errors into one :class:`SandboxConfigError` whose message starts with
the JSON path of the bad value, e.g. ``UserConfig.Namespaces[0].Queues[1].Properties.LockDuration: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from dualbus.sandbox.errors import SandboxConfigError

__all__ = [
    "ConfigDocument",
    "QueueJson",
    "RuleJson",
    "SubscriptionJson",
    "TopicJson",
    "parse_duration",
    "validate",
]

_DURATION = re.compile(
    r"P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?",
    re.ASCII,
)
# Azure's naming rules: queues and topics up to 260 characters and may hold "/", subscriptions and rules
# up to 50 and may not; all start and end with a letter or digit. Namespaces: 6-50, letters, digits, "-".
_ENTITY_NAME = re.compile(r"[A-Za-z0-9](?:[\w.\-/]*[A-Za-z0-9])?", re.ASCII)
_LEAF_NAME = re.compile(r"[A-Za-z0-9](?:[\w.\-]*[A-Za-z0-9])?", re.ASCII)
_NAMESPACE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-]{4,48}[A-Za-z0-9]", re.ASCII)
_MAX_SQL_LENGTH = 1_024
_ONE_SECOND = timedelta(seconds=1)
_LOCK_RANGE = (timedelta(seconds=5), timedelta(minutes=5))
# The official emulator's schema allows 5 s, below Azure's 20 s; 7 days is Azure's maximum.
_DEDUP_RANGE = (timedelta(seconds=5), timedelta(days=7))

Model = TypeVar("Model", bound=BaseModel)


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


def _span(low: timedelta, high: timedelta) -> Callable[[object], timedelta]:
    def read(value: object) -> timedelta:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")  # noqa: TRY004 - pydantic wants ValueError
        duration = parse_duration(value)
        if not low <= duration <= high:
            raise ValueError(f"{value} is outside Azure's range {low} .. {high}")
        return duration

    return read


def _name(pattern: re.Pattern[str], limit: int) -> Callable[[object], str]:
    def read(value: object) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value) or len(value) > limit:
            raise ValueError(
                f"{value!r} is not a valid name (at most {limit} letters, digits, '.', '-', '_', "
                "starting and ending with a letter or digit)"
            )
        return value

    return read


def _rule_name(value: object) -> str:
    # Azure's reserved name for the match-all rule is allowed as is.
    return "$Default" if value == "$Default" else _name(_LEAF_NAME, 50)(value)


def _sql_text(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a SQL expression, got {value!r}")
    if len(value) > _MAX_SQL_LENGTH:
        raise ValueError(f"{len(value)} characters, Azure allows {_MAX_SQL_LENGTH}")
    return value


def _scalars(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if isinstance(item, dict | list) or item is None:
            raise ValueError(f"{key}: expected a string, number or boolean, got {item!r}")
    return value


EntityName = Annotated[str, BeforeValidator(_name(_ENTITY_NAME, 260))]
LeafName = Annotated[str, BeforeValidator(_name(_LEAF_NAME, 50))]
Ttl = Annotated[timedelta, BeforeValidator(_span(_ONE_SECOND, timedelta.max))]
LockDuration = Annotated[timedelta, BeforeValidator(_span(*_LOCK_RANGE))]
DedupWindow = Annotated[timedelta, BeforeValidator(_span(*_DEDUP_RANGE))]
SqlText = Annotated[str, AfterValidator(_sql_text)]
Count = Annotated[int, Field(ge=1)]


class _Json(BaseModel):
    """Strict JSON types (no "3" for 3, no 1 for true) and no keys outside the schema."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _EntityProperties(_Json):
    default_message_time_to_live: Ttl = Field(timedelta(hours=1), alias="DefaultMessageTimeToLive")


class _Deduplication(_Json):
    requires_duplicate_detection: bool = Field(False, alias="RequiresDuplicateDetection")
    duplicate_detection_history_time_window: DedupWindow = Field(
        timedelta(seconds=20), alias="DuplicateDetectionHistoryTimeWindow"
    )


def _no_target(value: str) -> str | None:
    return value or None  # the schema writes "no forwarding target" as an empty string


ForwardTarget = Annotated[str, AfterValidator(_no_target)]


class SubscriptionProperties(_EntityProperties):
    """What a receiving entity (queue or subscription) takes."""

    lock_duration: LockDuration = Field(timedelta(minutes=1), alias="LockDuration")
    max_delivery_count: Count = Field(3, alias="MaxDeliveryCount")
    requires_session: bool = Field(False, alias="RequiresSession")
    dead_lettering_on_message_expiration: bool = Field(False, alias="DeadLetteringOnMessageExpiration")
    forward_to: ForwardTarget | None = Field(None, alias="ForwardTo")
    forward_dead_lettered_messages_to: ForwardTarget | None = Field(
        None, alias="ForwardDeadLetteredMessagesTo"
    )


class QueueProperties(SubscriptionProperties, _Deduplication):
    """A queue's Properties."""


class TopicProperties(_EntityProperties, _Deduplication):
    """A topic's Properties."""


class CorrelationFilterJson(_Json):
    """Every given system property must equal its value, and every user property (``Properties``) too."""

    content_type: str | None = Field(None, alias="ContentType")
    correlation_id: str | None = Field(None, alias="CorrelationId")
    label: str | None = Field(None, alias="Label")
    message_id: str | None = Field(None, alias="MessageId")
    reply_to: str | None = Field(None, alias="ReplyTo")
    reply_to_session_id: str | None = Field(None, alias="ReplyToSessionId")
    session_id: str | None = Field(None, alias="SessionId")
    to: str | None = Field(None, alias="To")
    properties: Annotated[dict[str, Any], AfterValidator(_scalars)] = Field({}, alias="Properties")

    @model_validator(mode="after")
    def _matches_something(self) -> CorrelationFilterJson:
        if not self.model_fields_set:
            raise ValueError("a correlation filter needs at least one property to match")
        return self


class SqlExpressionJson(_Json):
    """A SQL filter or action text."""

    sql_expression: SqlText = Field(alias="SqlExpression")


def _filter_type(value: object) -> object:
    if value not in ("Correlation", "Sql"):
        raise ValueError(f"expected 'Correlation' or 'Sql', got {value!r}")
    return value


class RuleProperties(_Json):
    """A rule's filter (by FilterType) and optional action."""

    filter_type: Annotated[Literal["Correlation", "Sql"], BeforeValidator(_filter_type)] = Field(
        alias="FilterType"
    )
    correlation_filter: CorrelationFilterJson | None = Field(None, alias="CorrelationFilter")
    sql_filter: SqlExpressionJson | None = Field(None, alias="SqlFilter")
    action: SqlExpressionJson | None = Field(None, alias="Action")


class RuleJson(_Json):
    """One subscription rule."""

    name: Annotated[str, BeforeValidator(_rule_name)] = Field(alias="Name")
    properties: RuleProperties = Field(alias="Properties")


class SubscriptionJson(_Json):
    """One subscription with its rules."""

    name: LeafName = Field(alias="Name")
    properties: SubscriptionProperties = Field(SubscriptionProperties(), alias="Properties")
    rules: list[RuleJson] = Field([], alias="Rules")


class TopicJson(_Json):
    """One topic with its subscriptions."""

    name: EntityName = Field(alias="Name")
    properties: TopicProperties = Field(TopicProperties(), alias="Properties")
    subscriptions: list[SubscriptionJson] = Field([], alias="Subscriptions")


class QueueJson(_Json):
    """One queue."""

    name: EntityName = Field(alias="Name")
    properties: QueueProperties = Field(QueueProperties(), alias="Properties")


class NamespaceJson(_Json):
    """One namespace."""

    name: Annotated[str, BeforeValidator(_name(_NAMESPACE_NAME, 50))] = Field(alias="Name")
    queues: list[QueueJson] = Field([], alias="Queues")
    topics: list[TopicJson] = Field([], alias="Topics")


def _some(items: list[NamespaceJson]) -> list[NamespaceJson]:
    if not items:
        raise ValueError("at least one namespace is required")
    return items


class LoggingJson(_Json):
    """Where the official emulator logs; read, not used."""

    type: object = Field(None, alias="Type")


class UserConfigJson(_Json):
    """The configuration proper."""

    namespaces: Annotated[list[NamespaceJson], AfterValidator(_some)] = Field(alias="Namespaces")
    logging: LoggingJson | None = Field(None, alias="Logging")


class ConfigDocument(_Json):
    """The whole file; editors add ``$schema``, which carries no configuration."""

    user_config: UserConfigJson = Field(alias="UserConfig")
    schema_: object = Field(None, alias="$schema")


def validate(model: type[Model], document: object, path: str = "") -> Model:
    """``document`` read as ``model``; SandboxConfigError naming the first bad value's JSON path."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise SandboxConfigError(f"{_path(path, error['loc'])}: {_message(error)}") from None


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    text = prefix
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


_FIXED = {
    "missing": "required",
    "extra_forbidden": "unknown key (not in the official Config.json schema)",
}
_TYPES = {
    "bool_type": "expected true or false",
    "int_type": "expected an integer",
    "string_type": "expected a string",
}
_CONTAINERS = {
    "list_type": "expected a JSON array",
    "dict_type": "expected a JSON object",
    "model_type": "expected a JSON object",
}


def _message(error: ErrorDetails) -> str:
    """Our wording of one pydantic error: what was expected, and what came."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind == "value_error":  # our validators' own messages
        message = str(ctx.get("error", error["msg"]))
    elif kind == "greater_than_equal":
        message = f"must be at least {ctx.get('ge')}, got {value!r}"
    elif kind in _CONTAINERS:
        message = f"{_CONTAINERS[kind]}, got {type(value).__name__}"
    elif kind in _TYPES:
        message = f"{_TYPES[kind]}, got {value!r}"
    else:
        message = _FIXED.get(kind, str(error["msg"]))
    return message
