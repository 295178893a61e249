"""Filters that name rows by their whole key, answered from the key as a database's index would.

F&O stores an entity's rows under a unique index on its key fields; a ``$filter`` of key equalities, or of
such groups joined by ``or`` (``(dataAreaId eq 'usmf' and CustomerAccount eq 'C-1') or (...)``, as a client
reads back the rows of a batch of data events), is a seek per key there, not a scan of the table. The twin
answers the same way, so that reading a few rows of a large table costs what it costs F&O. The filter's
own predicate is still applied to the rows found: the key only narrows where to look. A key value with a
``*`` is a wildcard (sandbox/fo/query.py) and names no one row: such a filter is read as any other.
"""

from __future__ import annotations

from typing import Any

from dualbus.d365 import FoEntity
from dualbus.sandbox.fo.query import FO_FILTER
from dualbus.sandbox.odata_filter import has_wildcard, literal, tokenize

__all__ = ["key_groups"]

_Token = tuple[str, str]
_OPEN, _CLOSE = ("punct", "("), ("punct", ")")


def key_groups(definition: FoEntity, text: str | None) -> list[tuple[Any, ...]] | None:
    """The keys (in key-field order) ``$filter`` names, when it is exactly one group of equalities over all
    the entity's key fields, or parenthesised groups joined by ``or``; None for any other filter."""
    if text is None:
        return None
    tokens = tokenize(text, FO_FILTER)
    if tokens[:1] != [_OPEN]:
        key = _key_of(definition, tokens)
        return None if key is None else [key]
    keys: list[tuple[Any, ...]] = []
    index = 0
    while index < len(tokens):
        end = index + 1
        while end < len(tokens) and tokens[end][0] != "punct":
            end += 1
        if tokens[index] != _OPEN or end == len(tokens) or tokens[end] != _CLOSE:
            return None
        key = _key_of(definition, tokens[index + 1 : end])
        if key is None:
            return None
        keys.append(key)
        index = end + 1
        if index < len(tokens):
            joiner = tokens[index]
            if joiner[0] != "name" or joiner[1] != "or" or index + 1 == len(tokens):
                return None
            index += 1
    return keys


def _key_of(definition: FoEntity, tokens: list[_Token]) -> tuple[Any, ...] | None:
    """The key when ``tokens`` are exactly ``K1 eq v1 and K2 eq v2 ...`` over all the entity's key fields
    with text or number values; None otherwise."""
    named: dict[str, object] = {}
    for index in range(0, len(tokens), 4):
        match tokens[index : index + 4]:
            # Plain text (not an enum literal, whose stored form differs, nor a wildcard, which names
            # no one row) or a number.
            case [("name", name), ("name", op), (("string" | "number") as kind, raw), *joiner] if (
                op.lower() == "eq"
                and (kind == "number" or (raw.startswith("'") and not has_wildcard((kind, raw))))
                and joiner in ([], [("name", "and")], [("name", "AND")])
            ):
                named[name.casefold()] = literal(kind, raw)
            case _:
                return None
    if not tokens or tokens[-1][0] == "name":
        return None  # nothing, or a trailing "and"
    if set(named) != {field.casefold() for field in definition.keys}:
        return None
    values = tuple(named[field.casefold()] for field in definition.keys)
    return values if all(isinstance(value, str | int) for value in values) else None
