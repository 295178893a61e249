"""The query options the pipeline uses: ``$filter`` (comparisons, and/or/not, a few string functions),
``$select``, ``$orderby`` and ``$top``.

See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dualbus.sandbox.dataverse.errors import bad_request
from dualbus.sandbox.dataverse.odata import parse_literal

__all__ = [
    "Predicate",
    "QueryOptions",
    "filter_names",
    "parse_filter",
    "parse_orderby",
    "parse_query_options",
]

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')"
    r"|(?P<literal>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?|-?\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),]))"
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda value, arg: arg in value,
    "startswith": str.startswith,
    "endswith": str.endswith,
}
_KEYWORD_LITERALS = {"null", "true", "false"}
_WORDS = _KEYWORD_LITERALS | _COMPARISONS | set(_FUNCTIONS) | {"and", "or", "not"}
_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """The parsed system query options of a collection GET."""

    predicate: Predicate | None = None
    select: tuple[str, ...] | None = None
    orderby: tuple[tuple[str, bool], ...] = ()
    top: int | None = None
    # Every property the options name, for the caller to check against the entity type.
    names: frozenset[str] = frozenset()


def parse_query_options(params: Mapping[str, str]) -> QueryOptions:
    """Read ``$filter``, ``$select``, ``$orderby`` and ``$top`` from a query string's parameters."""
    raw_filter = params.get("$filter")
    raw_select = params.get("$select")
    raw_top = params.get("$top")
    if raw_top is not None and not raw_top.isdigit():
        raise bad_request(f"Invalid value '{raw_top}' for $top query option.")
    select = tuple(c.strip() for c in raw_select.split(",") if c.strip()) if raw_select else None
    orderby = parse_orderby(params.get("$orderby", ""))
    names = {*(select or ()), *(column for column, _ in orderby), *filter_names(raw_filter or "")}
    return QueryOptions(
        predicate=parse_filter(raw_filter) if raw_filter else None,
        select=select,
        orderby=orderby,
        top=int(raw_top) if raw_top is not None else None,
        names=frozenset(names),
    )


def filter_names(text: str) -> frozenset[str]:
    """The property names a ``$filter`` expression reads (not its operators, functions or keywords)."""
    return frozenset(v for kind, v in _tokenize(text) if kind == "name" and v.lower() not in _WORDS)


def parse_orderby(text: str) -> tuple[tuple[str, bool], ...]:
    """``name desc,accountnumber`` -> ``(("name", True), ("accountnumber", False))``."""
    order: list[tuple[str, bool]] = []
    for clause in filter(None, (part.strip() for part in text.split(","))):
        column, _, direction = clause.partition(" ")
        if direction.strip().lower() not in {"", "asc", "desc"}:
            raise bad_request(f"Invalid $orderby clause '{clause}'.")
        order.append((column, direction.strip().lower() == "desc"))
    return tuple(order)


def parse_filter(text: str) -> Predicate:
    """Compile a ``$filter`` expression into a predicate over rows."""
    parser = _Parser(_tokenize(text))
    predicate = parser.expression()
    if parser.peek() is not None:
        raise bad_request(f"Syntax error at '{parser.peek()}' in $filter.")
    return predicate


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise bad_request(f"Syntax error at position {position} in $filter '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent: or < and < not < comparison / function / parentheses."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self._tokens = tokens
        self._index = 0

    def peek(self) -> str | None:
        return self._tokens[self._index][1] if self._index < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        if self._index >= len(self._tokens):
            raise bad_request("Unexpected end of $filter expression.")
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, value: str) -> None:
        if self._take()[1] != value:
            raise bad_request(f"Expected '{value}' in $filter.")

    def expression(self) -> Predicate:
        left = self._conjunction()
        while (self.peek() or "").lower() == "or":
            self._take()
            left = _either(left, self._conjunction())
        return left

    def _conjunction(self) -> Predicate:
        left = self._unary()
        while (self.peek() or "").lower() == "and":
            self._take()
            left = _both(left, self._unary())
        return left

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
        if kind == "name" and value.lower() in _FUNCTIONS and self.peek() == "(":
            return self._function(value.lower())
        left = self._operand(kind, value)
        op = self._take()[1].lower()
        if op not in _COMPARISONS:
            raise bad_request(f"Unsupported operator '{op}' in $filter.")
        right = self._operand(*self._take())
        return _compare(left, op, right)

    def _function(self, name: str) -> Predicate:
        self._expect("(")
        column = self._take()[1]
        self._expect(",")
        kind, raw = self._take()
        if kind != "string":
            raise bad_request(f"{name} expects a string literal.")
        self._expect(")")
        needle = str(parse_literal(raw)).casefold()
        test = _FUNCTIONS[name]

        def predicate(row: Row) -> bool:
            value = row.get(column)
            return isinstance(value, str) and test(value.casefold(), needle)

        return predicate

    @staticmethod
    def _operand(kind: str, value: str) -> Callable[[Row], Any]:
        if kind == "name" and value.lower() not in _KEYWORD_LITERALS:
            return lambda row: row.get(value)
        if kind == "punct":
            raise bad_request(f"Unexpected '{value}' in $filter.")
        constant = parse_literal(value)
        return lambda _row: constant


def _either(left: Predicate, right: Predicate) -> Predicate:
    return lambda row: left(row) or right(row)


def _both(left: Predicate, right: Predicate) -> Predicate:
    return lambda row: left(row) and right(row)


def _compare(left: Callable[[Row], Any], op: str, right: Callable[[Row], Any]) -> Predicate:
    def predicate(row: Row) -> bool:
        return _evaluate(left(row), op, right(row))

    return predicate


def _evaluate(a: object, op: str, b: object) -> bool:
    # Dataverse's default collation compares strings without regard to case.
    if isinstance(a, str) and isinstance(b, str):
        a, b = a.casefold(), b.casefold()
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False  # SQL semantics: null is neither greater nor smaller than anything
    try:
        return bool(_ORDERINGS[op](a, b))
    except TypeError:  # a string against a number: Dataverse would refuse; no row matches here
        return False
