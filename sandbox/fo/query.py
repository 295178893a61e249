"""The OData v4 URL subset the F&O twin understands: entity keys, ``$filter``, ``$orderby``, ``$select``.

``$filter`` takes comparisons (eq ne gt ge lt le) of a field with a literal, joined by and/or/not and
parentheses. Literals: 'text' (with '' for a quote), numbers, true/false/null, date-times
(2024-01-31T12:00:00Z) and F&O enum literals (``Microsoft.Dynamics.DataEntities.NoYes'Yes'``).
String comparisons ignore case, as the real entities' SQL collation does.
See https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html and
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from dualbus.sandbox.fo.errors import BadRequestError

__all__ = ["Predicate", "parse_filter", "parse_key", "parse_orderby", "parse_select", "sort_rows"]

Predicate = Callable[[dict[str, Any]], bool]
Literal = str | int | float | bool | datetime | None
_PAIR = 2  # "field desc"

_TOKEN = re.compile(
    r"\s*(?:(?P<str>(?:[A-Za-z_][\w.]*)?'(?:[^']|'')*')|(?P<dt>\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<punct>[(),=])|(?P<word>[A-Za-z_$@][\w.]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _tokens(text: str) -> list[tuple[str, Literal]]:
    out: list[tuple[str, Literal]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise BadRequestError(f"cannot parse {text[pos:]!r}")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        out.append((kind, _literal(kind, raw)))
        pos = match.end()
    return out


def _literal(kind: str, raw: str) -> Literal:
    if kind == "str":
        # An enum literal Namespace.Type'Value' compares as its value name.
        return raw[raw.index("'") + 1 : -1].replace("''", "'")
    if kind == "dt":
        return datetime.fromisoformat(raw)
    if kind == "num":
        return float(raw) if "." in raw else int(raw)
    return raw


class _Parser:
    def __init__(self, text: str, on_field: Callable[[str], None]) -> None:
        self._tokens = _tokens(text)
        self._pos = 0
        self._on_field = on_field

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._pos != len(self._tokens):
            raise BadRequestError(f"unexpected {self._tokens[self._pos][1]!r} in $filter")
        return predicate

    def _peek_word(self) -> str | None:
        if self._pos < len(self._tokens) and self._tokens[self._pos][0] == "word":
            return str(self._tokens[self._pos][1]).lower()
        return None

    def _next(self) -> tuple[str, Literal]:
        if self._pos >= len(self._tokens):
            raise BadRequestError("the $filter expression ends too early")
        token = self._tokens[self._pos]
        self._pos += 1
        return token

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek_word() == "or":
            self._pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._not()]
        while self._peek_word() == "and":
            self._pos += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def _not(self) -> Predicate:
        if self._peek_word() == "not":
            self._pos += 1
            inner = self._not()
            return lambda row: not inner(row)
        return self._primary()

    def _primary(self) -> Predicate:
        kind, value = self._next()
        if (kind, value) == ("punct", "("):
            inner = self._or()
            if self._next() != ("punct", ")"):
                raise BadRequestError("a ( in $filter is not closed")
            return inner
        if kind != "word":
            raise BadRequestError(f"expected a field name in $filter, found {value!r}")
        self._on_field(str(value))
        op_kind, op = self._next()
        compare = _COMPARE.get(str(op).lower()) if op_kind == "word" else None
        if compare is None:
            raise BadRequestError(f"unsupported operator {op!r} in $filter")
        lit_kind, literal = self._next()
        if lit_kind == "word":
            if str(literal).lower() not in _WORDS:
                raise BadRequestError(f"expected a literal in $filter, found {literal!r}")
            literal = _WORDS[str(literal).lower()]
        return _comparison(str(value), compare, literal)


def _comparison(field: str, compare: Callable[[Any, Any], bool], literal: Literal) -> Predicate:
    def predicate(row: dict[str, Any]) -> bool:
        left, right = _comparable(row.get(field), literal)
        if left is None or right is None:
            return compare in (operator.eq, operator.ne) and compare(left, right)
        try:
            return compare(left, right)
        except TypeError:
            return False

    return predicate


def _comparable(value: object, literal: Literal) -> tuple[object, object]:
    if isinstance(literal, datetime) and isinstance(value, str):
        try:
            return datetime.fromisoformat(value), literal
        except ValueError:
            return value, None
    if isinstance(value, str) and isinstance(literal, str):
        return value.casefold(), literal.casefold()
    return value, literal


def parse_filter(text: str | None, *, on_field: Callable[[str], None] = lambda _: None) -> Predicate | None:
    """A row predicate for a ``$filter`` expression, or None; ``on_field`` may refuse each field it names."""
    if text is None or not text.strip():
        return None
    return _Parser(text, on_field).parse()


def parse_key(text: str, key_fields: Sequence[str]) -> tuple[Any, ...]:
    """Key values in key-field order from ``'US-001'`` or ``dataAreaId='usmf',CustomerAccount='US-001'``."""
    tokens = _tokens(text)
    if len(key_fields) == 1 and len(tokens) == 1 and tokens[0][0] != "word":
        return (tokens[0][1],)
    named: dict[str, Literal] = {}
    for index in range(0, len(tokens), 4):
        # Each key part is: name = literal, followed by a comma unless it is the last.
        match tokens[index : index + 3]:
            case [("word", name), ("punct", "="), (_, value)]:
                named[str(name).casefold()] = value
            case _:
                raise BadRequestError(f"malformed key ({text})")
    try:
        values = tuple(named.pop(field.casefold()) for field in key_fields)
    except KeyError as exc:
        raise BadRequestError(f"the key ({text}) must name {', '.join(key_fields)}") from exc
    if named:
        raise BadRequestError(f"the key ({text}) names fields that are not keys: {', '.join(named)}")
    return values


def parse_select(text: str | None) -> list[str] | None:
    """The field names of ``$select``, or None for all fields."""
    if text is None or not text.strip():
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_orderby(text: str | None) -> list[tuple[str, bool]]:
    """``$orderby`` as (field, descending) pairs."""
    if text is None or not text.strip():
        return []
    order: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        direction = words[1].lower() if len(words) == _PAIR else "asc"
        if not words or len(words) > _PAIR or direction not in ("asc", "desc"):
            raise BadRequestError(f"malformed $orderby {part!r}")
        order.append((words[0], direction == "desc"))
    return order


def sort_rows(rows: list[dict[str, Any]], order: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Rows sorted by the ``$orderby`` pairs, nulls first as in SQL Server, stable otherwise."""
    for field, descending in reversed(order):
        rows.sort(key=_field_key(field), reverse=descending)
    return rows


def _field_key(field: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(field))


def _sort_key(value: object) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (2, value.casefold())
    if isinstance(value, bool):
        return (1, int(value))
    return (1, value)
