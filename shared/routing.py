"""How a message finds its subscription: the replay properties, and each topic's catch-all subscription.

Service Bus silently drops a message that no subscription's rule takes. Every topic therefore also has an
``unroutable`` subscription whose rule is the complement of its direction subscriptions' rules, so that such
a message lands where an operator sees it (docs/processing.md, Settlement).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

__all__ = [
    "ORIGINAL_ID_PROPERTY",
    "REPLAY_COUNT_PROPERTY",
    "REPLAY_TARGET_PROPERTY",
    "UNROUTABLE",
    "Subscription",
    "UnroutableSubscription",
    "is_replay_id",
    "replay_id",
]

# A replayed message names the one subscription it is for, so that it reaches no other subscription of
# the topic (an analytics or audit subscription added later would otherwise receive it twice).
REPLAY_TARGET_PROPERTY = "dualbus_replay_to"
# A replay's message id is ``<original id>.replay-<count>-<digest of its body>`` (``replay_id``); these
# carry the first two parts (``dualbus dlq``).
REPLAY_COUNT_PROPERTY = "dualbus_replay_count"
ORIGINAL_ID_PROPERTY = "dualbus_original_message_id"
UNROUTABLE = "unroutable"
_DIGEST_LENGTH = 12


def replay_id(original_id: str, count: int, body: bytes) -> str:
    """The message id of a replay: the same for the same letter, count and body, so that duplicate
    detection drops a replay sent again after a crash; another for an edited body, which a replay sent
    again with a corrected edit within the detection window must not be dropped as."""
    digest = hashlib.sha256(body).hexdigest()[:_DIGEST_LENGTH]
    return f"{original_id}.replay-{count}-{digest}"


def is_replay_id(message_id: object, original_id: str, count: object) -> bool:
    """Whether ``message_id`` is a replay id of ``original_id`` at ``count`` (``replay_id``'s, or the
    ``<original id>.replay-<count>`` replays were sent with before the body's digest was added)."""
    if not isinstance(message_id, str):
        return False
    stem = f"{original_id}.replay-{count}"
    if message_id == stem:
        return True
    digest = message_id.removeprefix(stem + "-")
    return digest != message_id and len(digest) == _DIGEST_LENGTH and all(c in _HEX for c in digest)


_HEX = frozenset("0123456789abcdef")


class Subscription(Protocol):
    """What the rendered files need of a subscription: its name, settings and one SQL rule."""

    @property
    def name(self) -> str: ...
    @property
    def rule_name(self) -> str: ...
    @property
    def rule_sql(self) -> str: ...
    @property
    def requires_session(self) -> bool: ...
    @property
    def lock_duration(self) -> timedelta: ...
    @property
    def max_delivery_count(self) -> int: ...
    @property
    def default_message_time_to_live(self) -> timedelta: ...
    @property
    def dead_lettering_on_message_expiration(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class UnroutableSubscription:
    """A topic's catch-all: its rule takes exactly what no direction subscription's rule takes.

    Without it Service Bus drops such a message without a trace. It takes messages without a session id too,
    so it needs none itself; consumers dead-letter what it receives as ``Unroutable`` (consumers/_unroutable).
    Rules compare text with text: a non-text ``origin`` is unknown to every rule, this one included.
    """

    # (origin, subscription name, whether it requires a session) of each direction subscription.
    routes: tuple[tuple[str, str, bool], ...]
    name: str = UNROUTABLE
    rule_name: str = UNROUTABLE
    requires_session: bool = False
    lock_duration: timedelta = timedelta(seconds=60)
    max_delivery_count: int = 10
    default_message_time_to_live: timedelta = timedelta(days=14)
    dead_lettering_on_message_expiration: bool = True

    @property
    def rule_sql(self) -> str:
        """No or another origin, no session id where one is needed, or a replay for another subscription."""
        origins = ", ".join(f"'{origin}'" for origin, _, _ in self.routes)
        parts = [f"origin IS NULL OR origin NOT IN ({origins})"]
        for origin, name, session in self.routes:
            elsewhere = f"{REPLAY_TARGET_PROPERTY} <> '{name}'"
            why = f"sys.SessionId IS NULL OR {elsewhere}" if session else elsewhere
            parts.append(f"(origin = '{origin}' AND ({why}))")
        return " OR ".join(parts)

    def why(self, properties: Mapping[str, object], session_id: str | None) -> str:
        """Why no direction subscription takes a message with these application properties and session id."""
        origin, target = _property(properties, "origin"), _property(properties, REPLAY_TARGET_PROPERTY)
        route = next((r for r in self.routes if r[0] == origin), None)
        if route is None:
            known = ", ".join(repr(r[0]) for r in self.routes)
            shown = _shown(origin)
            return f"the application property origin is {shown}; this topic's subscriptions take {known}"
        if route[2] and session_id is None:
            return f"the message has no session id, which subscription {route[1]!r} needs"
        if target is not None and target != route[1]:
            shown = _shown(target)
            return f"the replay is addressed to {shown}, but changes from {origin!r} go to {route[1]!r}"
        return f"no rule of this topic's subscriptions takes it (origin {origin!r}, replay {_shown(target)})"


def _property(properties: Mapping[str, object], name: str) -> object:
    # Rules read property names case-insensitively; so does this account of them.
    return next((value for key, value in properties.items() if key.casefold() == name), None)


def _shown(value: object) -> str:
    return "missing" if value is None else f"{type(value).__name__} {value!r:.60}"
