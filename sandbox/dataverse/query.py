"""The query options the pipeline uses: ``$filter`` (comparisons, and/or/not, a few string functions),
``$select``, ``$orderby`` and ``$top``.

``$filter`` is the shared parser (``sandbox/odata_filter.py``) in Dataverse's dialect,
:data:`DATAVERSE_FILTER`.
See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dualbus.sandbox import odata_filter
from dualbus.sandbox.dataverse.errors import bad_request

__all__ = [
    "DATAVERSE_FILTER",
    "Predicate",
    "QueryOptions",
    "filter_names",
    "parse_filter",
    "parse_orderby",
    "parse_query_options",
]

Predicate = odata_filter.Predicate

# Dataverse's $filter: the comparisons and and/or/not of the OData core with the OData string functions
# contains, startswith and endswith, no enum literals (choices are integers), refused in the Web API's error
# shape. https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
# (Dataverse's own query functions, such as Microsoft.Dynamics.CRM.In, are not taken.)
DATAVERSE_FILTER = odata_filter.FilterDialect(
    refuse=bad_request,
    functions={
        "contains": lambda value, arg: arg in value,
        "startswith": str.startswith,
        "endswith": str.endswith,
    },
)


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
    return odata_filter.parse_filter(text, DATAVERSE_FILTER)


def filter_names(text: str) -> frozenset[str]:
    """The property names a ``$filter`` expression reads (not its operators, functions or keywords)."""
    return odata_filter.filter_names(text, DATAVERSE_FILTER)
