"""Edits an operator asks for before a replay, checked against the map of the message's entity.

An edit names a field of the envelope's ``data`` (``data.SalesCurrencyCode=USD``). A path without the
``data.`` prefix, or a field the message's map does not know on its source side, is refused before anything
is sent: sent as asked, such an edit would only be dead-lettered again (docs/processing.md, unknown fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from dualbus.ops.deadletters import DeadLetter, edit_body, parse_edits
from shared.errors import ConfigError
from shared.maps import MapSet, Side

__all__ = ["check_edits", "edited_body", "parse_edit_lines"]

_DATA = "data."


def parse_edit_lines(text: str) -> dict[str, Any]:
    """``field=value`` per line (blank lines ignored); values read as JSON when they are JSON."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    edits = parse_edits(lines)
    for path in edits:
        if not path.startswith(_DATA) or path == _DATA:
            raise ConfigError(
                f"an edit names a field of the change's data, e.g. data.{path}=..., not {path!r}"
            )
    return edits


def check_edits(maps: MapSet, letter: DeadLetter, edits: Mapping[str, Any]) -> None:
    """ConfigError naming the first edit that the message's map does not know on its source side."""
    if not edits:
        return
    envelope = _envelope(letter)
    known = _known_fields(maps, envelope) | set(_data(envelope))
    for path in edits:
        name = path.removeprefix(_DATA).split(".", 1)[0]
        if name not in known:
            entity = envelope.get("entity", "?")
            raise ConfigError(
                f"{entity} has no field {name!r} (message {letter.message_id}); "
                f"known: {', '.join(sorted(known)) or 'none'}"
            )


def edited_body(letter: DeadLetter, edits: Mapping[str, Any]) -> bytes:
    """The body the replay would send, as JSON text bytes (ConfigError when it cannot be edited)."""
    return edit_body(letter.message_body, edits).joined


def _envelope(letter: DeadLetter) -> dict[str, Any]:
    try:
        document = orjson.loads(letter.body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"message {letter.message_id} has no JSON body, so it cannot be edited") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"message {letter.message_id} is not a JSON object, so it cannot be edited")
    return document


def _data(envelope: Mapping[str, Any]) -> Mapping[str, Any]:
    data = envelope.get("data")
    return data if isinstance(data, Mapping) else {}


def _known_fields(maps: MapSet, envelope: Mapping[str, Any]) -> set[str]:
    """The fields the map of the envelope's entity reads on the side it came from."""
    origin = envelope.get("origin")
    if origin not in ("fo", "dataverse"):
        return set()
    side: Side = "fo" if origin == "fo" else "dataverse"
    names: set[str] = set()
    for table_map in maps:
        if table_map.table_on(side) != envelope.get("entity"):
            continue
        names |= {name for f in table_map.fields if (name := f.name_on(side))}
        names |= set(_lookup_fields(table_map.lookups, side))
        names |= set(table_map.key_on(side))
    return names


def _lookup_fields(lookups: Iterable[Any], side: Side) -> Iterable[str]:
    for lookup in lookups:
        if side == "fo":
            yield from (str(name) for name in lookup.key.values())
        else:
            yield str(lookup.dataverse)
