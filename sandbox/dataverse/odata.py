"""OData URL pieces the twin reads: literals, key segments (``accounts(<guid>)``, alternate keys), binds.

Alternate-key addressing: https://learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from dualbus.sandbox.dataverse.errors import bad_request

__all__ = [
    "API_PREFIX",
    "EntityRef",
    "format_datetime",
    "parse_entity_path",
    "parse_literal",
    "relative_path",
    "split_top_level",
]

API_PREFIX = "/api/data/v9.2/"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_ENTITY_PATH = re.compile(r"^(?P<set>[A-Za-z_][A-Za-z0-9_]*)(\((?P<key>.*)\))?$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class EntityRef:
    """An entity set, optionally narrowed to one row by primary id or by alternate-key values."""

    entity_set: str
    row_id: str | None = None
    key_values: dict[str, Any] | None = None
    # The key names whose literal was a quoted string: the value's type is the literal's, not the value's.
    quoted: frozenset[str] = frozenset()

    @property
    def is_collection(self) -> bool:
        """True when the path names the whole entity set."""
        return self.row_id is None and self.key_values is None


def format_datetime(moment: datetime) -> str:
    """A UTC timestamp as Dataverse writes it: ``2024-05-01T12:30:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_literal(text: str) -> object:
    """An OData literal as a Python value: string, GUID (lower-cased), number, boolean, null, datetime."""
    if len(text) > 1 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].replace("''", "'")
    lowered = text.lower()
    if lowered == "null":
        return None
    if lowered in {"true", "false"}:
        return lowered == "true"
    if _GUID.match(text):
        return lowered
    if _DATETIME.match(text):
        return format_datetime(datetime.fromisoformat(text))
    if _NUMBER.match(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    raise bad_request(f"Unrecognized literal '{text}'.")


def split_top_level(text: str, separator: str = ",") -> list[str]:
    """Split on ``separator`` outside single-quoted strings (where ``''`` is an escaped quote)."""
    parts: list[str] = []
    current: list[str] = []
    in_string = False
    for char in text:
        if char == "'":
            in_string = not in_string
        if char == separator and not in_string:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def relative_path(path: str) -> str:
    """Strip scheme, host and API prefix: ``https://org/api/data/v9.2/WhoAmI`` reads as ``WhoAmI``."""
    path = unquote(path.strip())
    marker = path.find(API_PREFIX)
    if marker >= 0:
        return path[marker + len(API_PREFIX) :]
    return path.lstrip("/")


def parse_entity_path(path: str) -> EntityRef:
    """Read ``set``, ``set(<guid>)``, ``set(key='v')`` or ``set(k1=<guid>,k2='v')`` (any URL form)."""
    match = _ENTITY_PATH.match(relative_path(path))
    if match is None:
        raise bad_request(f"The path '{path}' is not an entity set or an entity.")
    entity_set, key = match.group("set"), match.group("key")
    if key is None:
        return EntityRef(entity_set)
    parts = [part.strip() for part in split_top_level(key)]
    if len(parts) == 1 and "=" not in parts[0]:
        row_id = parse_literal(parts[0])
        if not isinstance(row_id, str) or not _GUID.match(row_id):
            raise bad_request(f"The key '{key}' is not a GUID.")
        return EntityRef(entity_set, row_id=row_id)
    values: dict[str, Any] = {}
    quoted: set[str] = set()
    for part in parts:
        name, sep, literal = part.partition("=")
        if not sep:
            raise bad_request(f"The key segment '{key}' mixes named and unnamed values.")
        # Names are kept as written: whether a name is a key property of the table is the table's to say.
        values[name.strip()] = parse_literal(literal.strip())
        if literal.strip().startswith("'"):
            quoted.add(name.strip())
    return EntityRef(entity_set, key_values=values, quoted=frozenset(quoted))
