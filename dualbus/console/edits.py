"""Edits an operator asks for before a replay, checked against the map of the message's entity.

An edit names a field of the envelope's ``data`` (``data.SalesCurrencyCode=USD``). A path without the
``data.`` prefix, or a field the message's map does not know on its source side, is refused before anything
is sent: sent as asked, such an edit would only be dead-lettered again (docs/processing.md, unknown fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from dualbus.ops.deadletters import DeadLetter, edit_body, parse_edits
from dualbus.ops.edits import check_message_edits
from dualbus.shared.errors import ConfigError

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


def check_edits(letter: DeadLetter, edits: Mapping[str, Any]) -> None:
    """ConfigError naming an edit of a field the message's entity does not carry.

    It is the check ``dlq replay --set`` makes (``dualbus.ops.edits``).
    """
    if edits:
        check_message_edits(_envelope(letter), edits)


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
