"""The OData v4 URL subset the F&O twin understands: entity keys, ``$filter``, ``$orderby``, ``$select``.

``$filter`` is the shared parser (``sandbox/odata_filter.py``) in F&O's dialect, :data:`FO_FILTER`:
the comparisons, and/or/not and parentheses, with F&O enum literals
(``Microsoft.Dynamics.DataEntities.NoYes'Yes'``), ``*`` in text compared with eq as a wildcard, and without
string functions.
See https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html and
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from dualbus.sandbox import odata_filter
from dualbus.sandbox.fo.errors import BadRequestError

__all__ = [
    "ComparisonCheck",
    "Predicate",
    "parse_filter",
    "parse_key",
    "parse_orderby",
    "parse_select",
    "sort_rows",
]

Predicate = odata_filter.Predicate
_Row = TypeVar("_Row", bound=Mapping[str, Any])
_PAIR = 2  # "field desc"

# F&O's $filter: the comparisons and and/or/not of the OData core, enum literals such as
# Microsoft.Dynamics.DataEntities.NoYes'Yes', and no string functions (startswith/contains answer 400:
# https://learn.microsoft.com/en-us/answers/questions/5826840/odata-filter-startswith-returning-400-client-error).
# The filter operators F&O lists: https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
# "Contains" is "implemented as a wildcard character": StringField eq '*retail*' (F&O's OData documentation,
# "Filter details"; only eq is documented, so only eq reads a star as a wildcard):
# https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/2bb90a0ca66952ed09ec1a1917190d7f105d1e2d/articles/fin-ops-core/dev-itpro/data-entities/odata.md
FO_FILTER = odata_filter.FilterDialect(refuse=BadRequestError, enum_literals=True, eq_wildcard=True)


# Called for each comparison of a $filter, in the order written, with its operands as (kind, raw text) tokens
# and its operator (eq, ne, ...); it may refuse operands whose types do not bind together.
ComparisonCheck = Callable[[tuple[str, str], str, tuple[str, str]], None]
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


def parse_filter(
    text: str | None,
    *,
    on_field: Callable[[str], None] = lambda _: None,
    check: ComparisonCheck | None = None,
) -> Predicate | None:
    """A row predicate for a ``$filter`` expression, or None; ``on_field`` may refuse each field it names,
    ``check`` each comparison (``comparisons.check_comparison``)."""
    if text is None or not text.strip():
        return None
    for name in sorted(odata_filter.filter_names(text, FO_FILTER)):
        on_field(name)
    predicate = odata_filter.parse_filter(text, FO_FILTER)
    # Checked once the whole text has parsed: the library parses a filter before it binds it to the model,
    # so a syntax error anywhere is answered before a type error.
    if check is not None:
        for left, op, right in _comparisons(odata_filter.tokenize(text, FO_FILTER)):
            check(left, op, right)
    return predicate


def _comparisons(tokens: list[tuple[str, str]]) -> Iterator[tuple[tuple[str, str], str, tuple[str, str]]]:
    """Each comparison's (left operand, operator, right operand) in a filter that parsed: an operand is one
    token (F&O's filter has neither functions nor arithmetic) and an operator's name is never an operand."""
    for index in range(1, len(tokens) - 1):
        kind, raw = tokens[index]
        if kind == "name" and raw.lower() in _COMPARISONS:
            yield tokens[index - 1], raw.lower(), tokens[index + 1]


KeyCheck = Callable[[str, tuple[str, str]], None]


def parse_key(text: str, key_fields: Sequence[str], check: KeyCheck | None = None) -> tuple[Any, ...]:
    """Key values in key-field order from ``'US-001'`` or ``dataAreaId='usmf',CustomerAccount='US-001'``;
    ``check`` may refuse a value's literal for its field (``literals.check_key_literal``)."""
    tokens = odata_filter.tokenize(text, FO_FILTER)
    if len(key_fields) == 1 and len(tokens) == 1 and tokens[0][0] not in {"name", "punct"}:
        if check is not None:
            check(key_fields[0], tokens[0])
        return (odata_filter.literal(*tokens[0]),)
    named: dict[str, object] = {}
    for index in range(0, len(tokens), 4):
        # Each key part is: name = literal, followed by a comma unless it is the last.
        match tokens[index : index + 3]:
            case [("name", name), ("punct", "="), (kind, raw)] if kind not in {"name", "punct"}:
                if check is not None:
                    check(name, (kind, raw))
                named[name.casefold()] = odata_filter.literal(kind, raw)
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


def sort_rows(
    rows: list[_Row],
    order: list[tuple[str, bool]],
    enums: Mapping[str, Sequence[str]] | None = None,
) -> list[_Row]:
    """Rows sorted by the ``$orderby`` pairs, nulls first as in SQL Server, stable otherwise; a field in
    ``enums`` (field → its enum's members in order) sorts by its member's place, as F&O sorts an enum by
    its value."""
    for field, descending in reversed(order):
        members = (enums or {}).get(field)
        key = _field_key(field) if members is None else _member_key(field, members)
        rows.sort(key=key, reverse=descending)
    return rows


def _field_key(field: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(field))


def _member_key(field: str, members: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    place = {member: index for index, member in enumerate(members)}
    return lambda row: (0, 0) if row.get(field) is None else (1, place.get(str(row.get(field)), len(place)))


def _sort_key(value: object) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (2, value.casefold())
    if isinstance(value, bool):
        return (1, int(value))
    return (1, value)
