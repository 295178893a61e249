"""How a topic hands a message to a subscription: rule filters, and rule actions on their own copies.

Rules without actions are ORed and give one copy; each matching rule with an action gives a copy of its
own, edited by the action and marked with a ``RuleName`` property, as
https://learn.microsoft.com/azure/service-bus-messaging/topic-filters describes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

from dualbus.sandbox.servicebus.codec import Described, encode, encode_value
from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.message import PROPERTY_NAMES, SentMessage, message_sections

__all__ = ["ActionRule", "Matcher", "Route", "with_properties"]

Matcher = Callable[[Mapping[str, object], Mapping[str, object]], bool]
Action = Callable[[MutableMapping[str, object], MutableMapping[str, object]], None]
_PROPERTIES, _APP_PROPERTIES = 0x73, 0x74


@dataclass(frozen=True, slots=True)
class ActionRule:
    """A rule with an action: its name, its filter and the edit it makes to its copy."""

    name: str
    match: Matcher
    action: Action


@dataclass(slots=True)
class Route:
    """One subscription of a topic and the rules that decide what it gets."""

    subscription: Entity
    match: Matcher | None = None  # None: everything (the $Default rule)
    takes_plain: bool = True  # False when every rule has an action
    actions: list[ActionRule] = field(default_factory=list)

    def copies(self, env: SentMessage) -> list[SentMessage]:
        """The messages this subscription gets for ``env``: none, the message itself, and/or edited copies."""
        if self.match is None and not self.actions:
            return [env] if self.takes_plain else []
        system, user = env.system_properties(), env.application_properties()
        out = []
        if self.takes_plain and (self.match is None or self.match(system, user)):
            out.append(env)
        for rule in self.actions:
            if rule.match(system, user):
                edited_system, edited_user = dict(system), dict(user)
                rule.action(edited_system, edited_user)
                edited_user["RuleName"] = rule.name
                out.append(with_properties(env, edited_system, edited_user))
        return out


def with_properties(env: SentMessage, system: Mapping[str, object], user: Mapping[str, Any]) -> SentMessage:
    """A copy of ``env`` whose properties and application properties are re-encoded from the given maps."""
    out = bytearray()
    out += encode(Described(_PROPERTIES, [system.get(name) for name in PROPERTY_NAMES]))
    app_offset = len(out) + 3  # after the section descriptor 0x00 0x53 0x74
    app = bytearray()
    encode_value(dict(user), app)
    out += b"\x00\x53\x74" + app
    for code, start, _, end in message_sections(env.bare):
        if code not in (_PROPERTIES, _APP_PROPERTIES):
            out += env.bare[start:end]
    properties = tuple(system.get(name) for name in PROPERTY_NAMES)
    return replace(env, bare=bytes(out), properties=properties, app_offset=app_offset, _app_cache=[])
