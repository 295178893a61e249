"""Subscription rules as match functions: correlation filters, SQL filters and SQL rule actions.

The emulator calls ``match(system_properties, user_properties)``. System properties come under their
Service Bus names without ``sys.`` (``MessageId``, ``CorrelationId``, ``Label`` for the subject, ``To``,
``ReplyTo``, ``ContentType``, ``SessionId``, ``ReplyToSessionId``, ``DeliveryCount``, ``SequenceNumber``,
``EnqueuedTimeUtc``), absent ones simply missing. A rule matches when its filter is TRUE; a subscription
takes a copy of a message when any of its rules matches, and with no rules it takes every message (the
``$Default`` rule). See https://learn.microsoft.com/azure/service-bus-messaging/topic-filters and, for the
supported SQL subset, docs/emulator-filters.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus import _sql, _sql_action, _sql_eval
from dualbus.sandbox.servicebus.config import CorrelationFilterConfig, RuleConfig, SqlFilterConfig

__all__ = [
    "Match",
    "RuleAction",
    "compile_action",
    "compile_correlation_filter",
    "compile_rule",
    "compile_rules",
    "compile_sql_filter",
]

Match = Callable[[Mapping[str, object], Mapping[str, object]], bool]
RuleAction = Callable[[MutableMapping[str, object], MutableMapping[str, object]], None]

# Correlation filter fields and the system property each one is compared with.
_CORRELATION_FIELDS = (
    ("content_type", "ContentType"),
    ("correlation_id", "CorrelationId"),
    ("label", "Label"),
    ("message_id", "MessageId"),
    ("reply_to", "ReplyTo"),
    ("reply_to_session_id", "ReplyToSessionId"),
    ("session_id", "SessionId"),
    ("to", "To"),
)


def compile_sql_filter(expression: str) -> Match:
    """Compile a SQL filter expression; raise SandboxConfigError naming an unsupported construct."""
    predicate = _sql.parse_filter(expression)

    def match(system: Mapping[str, object], user: Mapping[str, object]) -> bool:
        return predicate(system, user) is True

    return match


def compile_correlation_filter(spec: CorrelationFilterConfig) -> Match:
    """Compile a correlation filter: every field it sets must equal the message's, all of them at once."""
    wanted_system = [
        (key, value) for attr, key in _CORRELATION_FIELDS if (value := getattr(spec, attr)) is not None
    ]
    wanted_user = list(spec.properties.items())

    def match(system: Mapping[str, object], user: Mapping[str, object]) -> bool:
        for key, expected in wanted_system:
            actual = system.get(key)
            # Ids may travel as UUIDs or integers on the wire; the filter holds their text.
            if actual is None or (actual != expected and str(actual) != expected):
                return False
        return all(_sql_eval.compare("=", user.get(key), expected) for key, expected in wanted_user)

    return match


def compile_rule(rule: RuleConfig) -> Match:
    """Compile one rule's filter; an error names the rule."""
    try:
        if isinstance(rule.filter, SqlFilterConfig):
            return compile_sql_filter(rule.filter.expression)
        return compile_correlation_filter(rule.filter)
    except SandboxConfigError as exc:
        raise SandboxConfigError(f"rule {rule.name!r}: {exc}") from exc


def compile_rules(rules: Sequence[RuleConfig]) -> Match:
    """A subscription's filter: any rule matching is enough; no rules is the match-all ``$Default`` rule."""
    matches = [compile_rule(rule) for rule in rules]
    if not matches:
        return _match_all

    def match(system: Mapping[str, object], user: Mapping[str, object]) -> bool:
        return any(each(system, user) for each in matches)

    return match


def compile_action(rule: RuleConfig) -> RuleAction | None:
    """Compile a rule's SQL action, which edits the properties of the copy its rule admitted; None if none."""
    if rule.action is None:
        return None
    try:
        return _sql_action.parse_action(rule.action)
    except SandboxConfigError as exc:
        raise SandboxConfigError(f"rule {rule.name!r}: action: {exc}") from exc


def _match_all(_system: Mapping[str, object], _user: Mapping[str, object]) -> bool:
    return True
