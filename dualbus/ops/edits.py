"""Checking a replay's edits before anything is sent: each must set a field the map carries.

A dead-lettered envelope's ``data`` holds the source's fields, as the maps of its area read them from the
system it came from (``producers.tables.SourceTable.carried_fields``): F&O names in what goes to
Dataverse, Dataverse names in what goes to F&O. An edit of anything else would be sent and then refused
again, so it is refused here, naming the fields that can be set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from dualbus.ops.bodies import MessageBody
from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import UNROUTABLE

__all__ = [
    "DATA_PREFIX",
    "EditError",
    "FieldChange",
    "body_changes",
    "check_edits",
    "check_message_edits",
    "editable_fields",
    "envelope_fields",
]

DATA_PREFIX = "data."
# Which source a subscription's messages come from; the unroutable one may hold either.
_ORIGINS = {
    "to-dataverse": (Origin.FO,),
    "to-fo": (Origin.DATAVERSE,),
    UNROUTABLE: (Origin.FO, Origin.DATAVERSE),
}


class EditError(ConfigError):
    """An edit that cannot be applied to the selected dead-letters (a usage error at the command line)."""


def editable_fields(
    areas: Iterable[str] = (), subscriptions: Iterable[str] = ()
) -> dict[str, tuple[str, ...]]:
    """Per ``area/Entity`` the data fields an edit may set in the chosen areas and directions (all: none)."""
    chosen_areas = set(areas)
    origins = {origin for sub in (set(subscriptions) or set(_ORIGINS)) for origin in _ORIGINS.get(sub, ())}
    fields: dict[str, tuple[str, ...]] = {}
    for (area, entity, origin), names in _carried().items():
        if (not chosen_areas or area in chosen_areas) and origin in origins:
            name = f"{area}/{entity}"
            fields[name] = tuple(sorted({*fields.get(name, ()), *names}))
    return fields


@cache
def _carried() -> dict[tuple[str, str, Origin], frozenset[str]]:
    """Per (area, source entity, origin) the fields its changes carry in ``data``."""
    carried: dict[tuple[str, str, Origin], frozenset[str]] = {}
    for table_map in load_maps():
        for origin in Origin:
            if table_map.carries(origin.other.side):
                table = SourceTable(table_map=table_map, origin=origin)
                key = (table.area, table.name, origin)
                carried[key] = carried.get(key, frozenset()) | frozenset(table.carried_fields)
    return carried


def check_message_edits(envelope: Mapping[str, Any], edits: Mapping[str, Any]) -> None:
    """Refuse edits of fields this message's entity does not carry (EditError; the message is not sent)."""
    try:
        origin = Origin(str(envelope.get("origin")))
    except ValueError:
        return  # not an envelope dualbus can read: nothing to check the edit against
    fields = _carried().get((str(envelope.get("area")), str(envelope.get("entity")), origin))
    if fields is None:
        return
    for path in edits:
        field = path.removeprefix(DATA_PREFIX)
        if field not in fields:
            listed = ", ".join(sorted(fields))
            raise EditError(f"{envelope.get('entity')} does not carry {field!r}: its fields are {listed}")


def check_edits(
    edits: Mapping[str, Any], areas: Iterable[str] = (), subscriptions: Iterable[str] = ()
) -> None:
    """Refuse an edit that is not ``data.FIELD`` with a FIELD some chosen map carries (EditError)."""
    if not edits:
        return
    fields = editable_fields(areas, subscriptions)
    known = {name for names in fields.values() for name in names}
    for path in edits:
        if not path.startswith(DATA_PREFIX):
            hint = f"data.{path}" if path in known else "data.FIELD"
            raise EditError(f"{path!r}: an edit sets a field of the change's data: write {hint}=VALUE")
        field = path.removeprefix(DATA_PREFIX)
        if field not in known:
            raise EditError(f"{path!r}: no map of the chosen routes carries {field!r}; {_listing(fields)}")


def _listing(fields: Mapping[str, tuple[str, ...]]) -> str:
    if not fields:
        return "the chosen areas and directions carry no fields"
    return "the fields are: " + "; ".join(f"{name}: {', '.join(names)}" for name, names in fields.items())


@dataclass(frozen=True, slots=True)
class FieldChange:
    """What an edit does to one message: the field, its value before and after."""

    path: str
    before: Any
    after: Any

    def describe(self) -> str:
        """``data.SalesCurrencyCode: 'EUR' → 'USD'`` (``(absent)`` for a field the message lacks)."""
        before = "(absent)" if self.before is _ABSENT else repr(self.before)
        after = "(absent)" if self.after is _ABSENT else repr(self.after)
        return f"{self.path}: {before} → {after}"


_ABSENT: Any = object()


def body_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[FieldChange]:
    """How one envelope differs from another, field by field (its own and its data's, ``data.FIELD``): what
    a replay changes of a letter, by an edited export file and ``--set`` alike."""
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, _ABSENT), after.get(name, _ABSENT)
        if name == "data" and isinstance(old, Mapping) and isinstance(new, Mapping):
            changes += [
                FieldChange(f"{DATA_PREFIX}{change.path}", change.before, change.after)
                for change in body_changes(old, new)
            ]
        elif old != new:
            changes.append(FieldChange(name, old, new))
    return changes


def envelope_fields(body: MessageBody) -> dict[str, Any]:
    """A body as the JSON object it holds (a batch's first change: they share entity and origin); empty
    when it holds none (nothing to check an edit against)."""
    try:
        document = orjson.loads(body.joined)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(document, list) and document:
        document = document[0]
    return document if isinstance(document, dict) else {}
