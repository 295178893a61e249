"""OData ``$filter`` for both twins: one parser, and a dialect for what the two services do differently.

Both read the OData v4 URL conventions' core: comparisons (eq ne gt ge lt le) of properties and literals,
joined by and/or/not and parentheses; literals 'text' (with '' for a quote), numbers, true/false/null,
GUIDs and date-times (https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html).
Strings compare without regard to case, as both services' SQL collations do, and null is neither greater
nor smaller than anything (only eq/ne match it), as in SQL.

What differs is a :class:`FilterDialect`: which string functions a service takes, whether it reads enum
literals (``Namespace.Type'Value'``), whether ``*`` in text compared with ``eq`` is a wildcard, and how it
refuses a filter (its own error shape).
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "FilterDialect",
    "LiteralCheck",
    "Predicate",
    "filter_names",
    "has_wildcard",
    "literal",
    "parse_filter",
    "tokenize",
]

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]
Operand = Callable[[Row], Any]
# Called for each comparison of a property with a literal: (property, operator, (kind, raw text)); it may
# refuse a literal of the wrong type, as a service that binds the filter to its model does.
LiteralCheck = Callable[[str, str, tuple[str, str]], None]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>(?:[A-Za-z_][\w.]*)?'(?:[^']|'')*')"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))"
    r"|(?P<datetime>\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2})?)"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<punct>[(),=])"
    r"|(?P<name>[A-Za-z_$@][\w.]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_KEYWORD_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
_KEYWORDS = {"and", "or", "not", *_COMPARE, *_KEYWORD_LITERALS}


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed as itself: a key of the tokens' cache
class FilterDialect:
    """What one service's ``$filter`` takes beyond the shared core, and how it refuses one."""

    # Raised for a filter the service refuses (the twin's own 400 error).
    refuse: Callable[[str], Exception]
    # String functions by name, each given the (casefolded) property value and argument.
    functions: Mapping[str, Callable[[str, str], bool]] = field(default_factory=dict)
    # Whether ``Namespace.Type'Value'`` reads as the enum value's name.
    enum_literals: bool = False
    # Whether a ``*`` in a text literal compared with ``eq`` stands for any text (none included).
    eq_wildcard: bool = False


def parse_filter(text: str, dialect: FilterDialect, check: LiteralCheck | None = None) -> Predicate:
    """Compile a ``$filter`` expression into a predicate over rows; refuse it as the dialect does, and
    each literal compared with a property as ``check`` does."""
    parser = _Parser(tokenize(text, dialect), dialect, check)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise dialect.refuse(f"Syntax error at '{parser.peek()}' in $filter.")
    return predicate


def filter_names(text: str, dialect: FilterDialect) -> frozenset[str]:
    """The property names a ``$filter`` expression reads (not its operators, functions or keywords)."""
    return frozenset(
        value
        for kind, value in tokenize(text, dialect)
        if kind == "name" and value.lower() not in _KEYWORDS and value.lower() not in dialect.functions
    )


def tokenize(text: str, dialect: FilterDialect) -> list[tuple[str, str]]:
    """``text`` as (kind, raw text) tokens; kinds: string, guid, datetime, number, punct, name."""
    # One request's filter is read several times (parsed, its literals checked, its keys found): the
    # tokens of the last few texts are kept, and each caller gets a list of its own.
    return list(_tokens(text, dialect))


@functools.lru_cache(maxsize=64)
def _tokens(text: str, dialect: FilterDialect) -> tuple[tuple[str, str], ...]:
    tokens: list[tuple[str, str]] = []
    position = 0
    # Tokens skip the spaces before them; the spaces after the last one end the text. (Testing the rest of
    # the text for a non-space instead copied it at every token: quadratic in a long filter of many keys.)
    end = len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None:
            raise dialect.refuse(f"Syntax error at position {position} in $filter '{text}'.")
        kind = match.lastgroup or ""
        if kind == "string" and not match.group(kind).startswith("'") and not dialect.enum_literals:
            raise dialect.refuse(f"Unrecognized literal '{match.group(kind)}' in $filter.")
        if kind == "datetime" and _instant(match.group(kind)) is None:
            # 2024-02-30T00:00:00Z has a date-time's shape and is none: refused here, once for every reader.
            raise dialect.refuse(f"'{match.group(kind)}' is not a valid Edm.DateTimeOffset literal.")
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tuple(tokens)


def literal(kind: str, raw: str) -> object:
    """A literal token's value: text, lower-case GUID text, datetime, int or float, True/False/None."""
    if kind == "string":
        # An enum literal Namespace.Type'Value' compares as its value's name.
        return raw[raw.index("'") + 1 : -1].replace("''", "'")
    if kind == "guid":
        return raw.lower()  # both services store GUIDs lower-case
    if kind == "datetime":
        return datetime.fromisoformat(raw)
    if kind == "number":
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    return _KEYWORD_LITERALS[raw.lower()]


class _Parser:
    """Recursive descent: or < and < not < comparison / function / parentheses."""

    def __init__(
        self, tokens: list[tuple[str, str]], dialect: FilterDialect, check: LiteralCheck | None
    ) -> None:
        self._tokens = tokens
        self._index = 0
        self._dialect = dialect
        self._check = check

    def peek(self) -> str | None:
        return self._tokens[self._index][1] if self._index < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        if self._index >= len(self._tokens):
            raise self._dialect.refuse("Unexpected end of $filter expression.")
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, value: str) -> None:
        if self._take()[1] != value:
            raise self._dialect.refuse(f"Expected '{value}' in $filter.")

    def expression(self) -> Predicate:
        parts = [self._conjunction()]
        while (self.peek() or "").lower() == "or":
            self._take()
            parts.append(self._conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def _conjunction(self) -> Predicate:
        parts = [self._unary()]
        while (self.peek() or "").lower() == "and":
            self._take()
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def _unary(self) -> Predicate:
        if (self.peek() or "").lower() == "not":
            self._take()
            inner = self._unary()
            return lambda row: not inner(row)
        if self.peek() == "(":
            self._take()
            inner = self.expression()
            self._expect(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Predicate:
        kind, value = self._take()
        if kind == "name" and self.peek() == "(":
            return self._function(value)
        left = self._operand(kind, value)
        op = self._take()[1].lower()
        if op not in _COMPARE:
            raise self._dialect.refuse(f"Unsupported operator '{op}' in $filter.")
        other = self._take()
        right = self._operand(*other)
        self._check_literal((kind, value), op, other)
        if op == "eq" and self._dialect.eq_wildcard:
            # The side with a starred literal is the pattern, the other side the value it is matched with.
            for operand, token in ((left, other), (right, (kind, value))):
                pattern = _wildcard(token)
                if pattern is not None:
                    return _like(operand, pattern)
        compare = _COMPARE[op]
        return lambda row: _evaluate(left(row), compare, right(row))

    def _check_literal(self, left: tuple[str, str], op: str, right: tuple[str, str]) -> None:
        if self._check is None:
            return
        for one, two in ((left, right), (right, left)):
            if _is_property(one) and not _is_property(two):
                self._check(one[1], op, two)

    def _function(self, name: str) -> Predicate:
        test = self._dialect.functions.get(name.lower())
        if test is None:
            raise self._dialect.refuse(f"Unsupported function '{name}' in $filter.")
        self._expect("(")
        column = self._take()[1]
        self._expect(",")
        kind, raw = self._take()
        if kind != "string":
            raise self._dialect.refuse(f"{name} expects a string literal.")
        self._expect(")")
        needle = str(literal(kind, raw)).casefold()

        def predicate(row: Row) -> bool:
            value = row.get(column)
            return isinstance(value, str) and test(value.casefold(), needle)

        return predicate

    def _operand(self, kind: str, value: str) -> Operand:
        if kind == "name" and value.lower() not in _KEYWORDS:
            return lambda row: row.get(value)
        if kind in {"punct", "name"} and value.lower() not in _KEYWORD_LITERALS:
            raise self._dialect.refuse(f"Unexpected '{value}' in $filter.")
        constant = literal(kind, value)
        return lambda _row: constant


def has_wildcard(token: tuple[str, str]) -> bool:
    """Whether ``token`` is a text literal (not an enum literal) with a ``*`` in it."""
    kind, raw = token
    return kind == "string" and raw.startswith("'") and "*" in raw


def _wildcard(token: tuple[str, str]) -> re.Pattern[str] | None:
    """The pattern a text literal with ``*`` in it stands for, matched without regard to case; None for
    any other token."""
    if not has_wildcard(token):
        return None
    text = str(literal(*token))
    return re.compile(".*".join(map(re.escape, text.split("*"))), re.IGNORECASE | re.DOTALL)


def _like(operand: Operand, pattern: re.Pattern[str]) -> Predicate:
    def matches(row: Row) -> bool:
        value = operand(row)
        return isinstance(value, str) and pattern.fullmatch(value) is not None

    return matches


def _is_property(token: tuple[str, str]) -> bool:
    kind, value = token
    return kind == "name" and value.lower() not in _KEYWORDS


def _evaluate(a: object, compare: Callable[[Any, Any], bool], b: object) -> bool:
    a, b = _comparable(a, b)
    if a is None or b is None:
        return compare in (operator.eq, operator.ne) and compare(a, b)
    try:
        return bool(compare(a, b))
    except TypeError:  # a string against a number: the services would refuse; no row matches here
        return False


def _comparable(a: object, b: object) -> tuple[object, object]:
    """Both sides in one form: stored date-time text read as an instant, strings casefolded."""
    if isinstance(b, datetime) and isinstance(a, str):
        return _instant(a), b
    if isinstance(a, datetime) and isinstance(b, str):
        return a, _instant(b)
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold(), b.casefold()
    return a, b


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
