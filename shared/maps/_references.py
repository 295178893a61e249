"""Dataverse references by alternate key, where a key part that is itself a lookup needs the row's GUID.

``accounts`` is keyed by ``msdyn_company`` (a lookup to ``cdm_companies``) and ``accountnumber``. Dataverse
addresses such a key part by its lookup property and the company row's id:
``accounts(_msdyn_company_value=<guid>,accountnumber='A')`` (https://github.com/MicrosoftDocs/powerapps-docs/
blob/e40bbeb49bf84637609038b88caab9082ef6acd6/powerapps-docs/developer/data-platform/
use-alternate-key-reference-record.md). A map names a lookup by its navigation property; the lookup property
is named after the lookup's column, which the published table schema gives (``msdyn_CompanyId`` of
``products`` reads back as ``_msdyn_companyid_value``). The engine knows only the natural value (``USMF``);
these helpers take a ``resolve`` callback, supplied by the caller that can reach Dataverse, which turns
``("cdm_companies", {"cdm_companycode": "USMF"})`` into that id. Without one, natural values are written as
literals under the map's own name for the part.

A key value is a literal of its column's type (``dataverse_key_literal``): text quoted, a date and time
bare (``msdyn_validfrom=2024-01-01T00:00:00Z``). OData reads a key literal as its property's type, taking
quotes off text alone, and a value it cannot read so matches no key (https://github.com/OData/odata.net/blob/
05935c6f85283cea2bd25555e452e62ff72af358/src/Microsoft.OData.Core/UriParser/Parsers/LiteralParser.cs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from dualbus.d365 import dataverse_tables, lookup_value_column
from dualbus.shared.errors import LookupMissingError, LookupUnresolvedError
from dualbus.shared.maps._changes import DataverseChange, LookupBinding, key_text, odata_literal
from dualbus.shared.maps._fields import Scalar
from dualbus.shared.maps._registry import MapSet
from dualbus.shared.maps._table import TableMap

__all__ = [
    "Fetcher",
    "Resolver",
    "bind_reference",
    "dataverse_key_literal",
    "entity_path",
    "expand_lookups",
    "key_segment",
    "lookup_column",
    "resolved_body",
]

# (target table, its alternate-key values) -> the row's primary id (a GUID).
Resolver = Callable[[str, Mapping[str, Scalar]], str]
# (target table, a row's primary id) -> that row, or None when there is none.
Fetcher = Callable[[str, str], Mapping[str, object] | None]


# OData's dateTimeOffsetValue: year "-" month "-" day "T" hour ":" minute
# [ ":" second [ "." fractionalSeconds ] ] ( "Z" / SIGN hour ":" minute ):
# https://docs.oasis-open.org/odata/odata/v4.01/os/abnf/odata-abnf-construction-rules.txt
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)")


def key_segment(maps: MapSet, table: str, key: Mapping[str, Scalar], resolve: Resolver | None = None) -> str:
    """The ``(k1=v1,k2=v2)`` segment that addresses a row of ``table`` by its alternate key."""
    table_map = maps.table_map(table)
    parts: list[tuple[str, str]] = []
    for column, value in key.items():
        lookup = table_map.lookup(column) if table_map is not None else None
        if lookup is None or resolve is None:
            parts.append((column, dataverse_key_literal(table, column, value)))
            continue
        # Validation guarantees a lookup inside a key has a one-column target key.
        row_id = resolve(lookup.target_table, {next(iter(lookup.key)): value})
        if not row_id:
            name = table_map.name if table_map is not None else ""
            raise LookupMissingError(
                f"no {lookup.target_table} row for {value!r}", map_name=name, field=column
            )
        parts.append((lookup_value_column(lookup_column(table, column)), row_id))
    return key_text(parts)


def dataverse_key_literal(table: str, column: str, value: Scalar) -> str:
    """``value`` as a key literal of a column of ``table``: a date and time bare, the rest as
    ``odata_literal`` writes it."""
    schema = dataverse_tables().get(table)
    definition = schema.columns.get(column) if schema is not None else None
    if definition is not None and definition.type == "DateTime" and _is_date_time(value):
        return str(value)
    return odata_literal(value)


def _is_date_time(value: Scalar) -> bool:
    """Whether ``value`` is an OData date and time (``2024-01-01T00:00:00Z``, an offset or ``Z`` required),
    safe to write bare in a key segment; anything else, quoted, cannot end the segment early and is no key.
    Python's own parser also takes forms that are none (a space for the ``T``, a comma before fractions)."""
    return isinstance(value, str) and _DATE_TIME.fullmatch(value) is not None


def lookup_column(table: str, navigation: str) -> str:
    """The column of ``table`` whose lookup ``navigation`` sets (the navigation itself when unknown)."""
    schema = dataverse_tables().get(table)
    found = schema.navigation(navigation) if schema is not None else None
    return found[0] if found is not None else navigation


def bind_reference(maps: MapSet, binding: LookupBinding, resolve: Resolver | None = None) -> str | None:
    """The ``@odata.bind`` value of a lookup, key parts that are lookups resolved; None clears it."""
    if binding.key is None:
        return None
    return f"/{binding.table}{key_segment(maps, binding.table, binding.key, resolve)}"


def entity_path(maps: MapSet, change: DataverseChange, resolve: Resolver | None = None) -> str:
    """The path that upserts a change by its alternate key: ``accounts(_msdyn_company_value=<id>,...)``."""
    return f"{change.target}{key_segment(maps, change.target, change.key, resolve)}"


def resolved_body(
    maps: MapSet, change: DataverseChange, resolve: Resolver | None = None
) -> dict[str, object]:
    """The Web API body of a change with every ``@odata.bind`` built by ``bind_reference``."""
    body: dict[str, object] = dict(change.payload)
    for binding in change.lookups:
        body[f"{binding.navigation}@odata.bind"] = bind_reference(maps, binding, resolve)
    return body


def expand_lookups(table_map: TableMap, record: Mapping[str, object], fetch: Fetcher) -> dict[str, object]:
    """A Dataverse row whose lookup ids (``_msdyn_company_value``) are replaced by the targets' key columns.

    The Web API returns a lookup as the referenced row's id; ``to_fo`` needs the natural values. Where the
    service can ``$expand``, the row already has them; otherwise ``fetch`` reads each referenced row.
    """
    expanded = dict(record)
    for lookup in table_map.lookups:
        id_column = lookup_value_column(lookup_column(table_map.dataverse_table, lookup.dataverse))
        if lookup.dataverse in record or id_column not in record:
            continue
        row_id = record[id_column]
        if row_id is None:
            expanded[lookup.dataverse] = None
            continue
        row = fetch(lookup.target_table, str(row_id))
        if row is None:
            raise LookupUnresolvedError(
                f"no {lookup.target_table} row with id {row_id}",
                map_name=table_map.name,
                field=lookup.dataverse,
            )
        expanded[lookup.dataverse] = {column: row[column] for column in lookup.key if column in row}
    return expanded
