"""Run-time semantics of Service Bus SQL filters: property look-up, three-valued logic, comparison, LIKE.

As https://learn.microsoft.com/azure/service-bus-messaging/service-bus-messaging-sql-filter describes it: a
missing property (or a NULL) is *unknown*; a comparison, LIKE or IN with an unknown operand is unknown;
AND/OR/NOT follow the three-valued tables; a rule matches only when its filter is TRUE. Property names are
case-insensitive. Operators follow C# implicit conversions, so numbers compare across int and double while
other mixed types (a string against a number) have no conversion: they compare as unknown here.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, MutableMapping
from datetime import datetime
from typing import Any, Final, TypeAlias

from dualbus.sandbox.errors import SandboxConfigError

__all__ = [
    "READ_ONLY_SYSTEM",
    "Getter",
    "Predicate",
    "Presence",
    "Properties",
    "all_of",
    "any_of",
    "compare",
    "like_regex",
    "lookup_user",
    "negate",
    "set_user",
    "system_name",
    "user_key",
]

Properties: TypeAlias = Mapping[str, object]
# A getter returns a property's value, None standing for NULL and for a missing property alike.
Getter: TypeAlias = Callable[[Properties, Properties], object]
# A predicate returns True, False, or None for unknown.
Predicate: TypeAlias = Callable[[Properties, Properties], bool | None]
Presence: TypeAlias = Callable[[Properties, Properties], bool]

# The message's system properties as the emulator hands them over, under their .NET BrokeredMessage names.
_SYSTEM_NAMES: Final = (
    "MessageId",
    "CorrelationId",
    "Label",
    "To",
    "ReplyTo",
    "ContentType",
    "SessionId",
    "ReplyToSessionId",
    "DeliveryCount",
    "SequenceNumber",
    "EnqueuedTimeUtc",
    "EnqueuedSequenceNumber",
    "ScheduledEnqueueTimeUtc",
    "ExpiresAtUtc",
    "TimeToLive",
    "PartitionKey",
    "Size",
)
_SYSTEM: Final = {name.casefold(): name for name in _SYSTEM_NAMES} | {"subject": "Label"}
# Set by the broker, not by a rule action.
READ_ONLY_SYSTEM: Final = frozenset(
    {"DeliveryCount", "SequenceNumber", "EnqueuedTimeUtc", "EnqueuedSequenceNumber", "ExpiresAtUtc", "Size"}
)
_ORDERING: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def system_name(name: str, position: int) -> str:
    """The canonical name of a ``sys.`` property; an unknown one is an error, as Azure makes it."""
    canonical = _SYSTEM.get(name.casefold())
    if canonical is None:
        raise SandboxConfigError(f"unknown system property sys.{name} at position {position}")
    return canonical


def user_key(properties: Properties, name: str) -> str | None:
    """The key under which a user property is stored, matched case-insensitively; None when absent."""
    if name in properties:
        return name
    folded = name.casefold()
    for key in properties:
        if isinstance(key, str) and key.casefold() == folded:
            return key
    return None


def lookup_user(properties: Properties, name: str) -> tuple[bool, object]:
    """Whether a user property exists and its value."""
    key = user_key(properties, name)
    return (False, None) if key is None else (True, properties[key])


def set_user(properties: MutableMapping[str, object], name: str, value: object) -> None:
    """Assign a user property, keeping the spelling of an existing key."""
    properties[user_key(properties, name) or name] = value


def negate(inner: Predicate) -> Predicate:
    """NOT, where NOT unknown is unknown."""

    def evaluate(system: Properties, user: Properties) -> bool | None:
        value = inner(system, user)
        return None if value is None else not value

    return evaluate


def all_of(left: Predicate, right: Predicate) -> Predicate:
    """AND by its three-valued table: FALSE wins over unknown."""

    def evaluate(system: Properties, user: Properties) -> bool | None:
        first = left(system, user)
        if first is False:
            return False
        second = right(system, user)
        if second is False:
            return False
        return None if first is None or second is None else True

    return evaluate


def any_of(left: Predicate, right: Predicate) -> Predicate:
    """OR by its three-valued table: TRUE wins over unknown."""

    def evaluate(system: Properties, user: Properties) -> bool | None:
        first = left(system, user)
        if first is True:
            return True
        second = right(system, user)
        if second is True:
            return True
        return None if first is None or second is None else False

    return evaluate


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare(symbol: str, left: object, right: object) -> bool | None:
    """Compare two values; unknown when either is NULL or when the types have no implicit conversion."""
    if left is None or right is None:
        return None
    if not (_is_number(left) and _is_number(right)) and type(left) is not type(right):
        return None
    if symbol == "=":
        return left == right
    if symbol in ("<>", "!="):
        return left != right
    # C# orders numbers and date-times; strings and booleans have no < operator.
    if isinstance(left, int | float | datetime) and not isinstance(left, bool):
        return _ORDERING[symbol](left, right)
    return None


def like_regex(pattern: str, escape: str | None, position: int) -> re.Pattern[str]:
    """Translate a LIKE pattern (% any run, _ any one character, ESCAPE making the next one literal)."""
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == escape:
            literal = next(chars, None)
            if literal is None:
                raise SandboxConfigError(
                    f"LIKE pattern at position {position} ends with its escape character"
                )
            parts.append(re.escape(literal))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)
