"""The tables the twin serves: exactly the d365 Dataverse schema files, each with dualbus's prerequisite.

- Entity sets, columns, types, limits, options, lookups and alternate keys: ``d365.dataverse_tables()``
  (``d365/dataverse/*.json``, every entry with its public source).
- ``dualbus_sourceversion`` on every table: ``d365.DV_EXTENSION_COLUMNS``, the one column a deployment adds
  (docs/deploy.md); the twin adds nothing else. ``UNPREPARED_TABLES`` leaves it out, as an environment
  before that step (``start_dataverse(prepared=False)``).
- Platform columns: "the following columns are included in all tables of Dataverse … CreatedBy, CreatedOn,
  ModifiedBy, ModifiedOn, Version Number" (https://github.com/MicrosoftDocs/powerapps-docs/blob/
  3195763e37d81095d381d61f88ea28b43553b6a1/powerapps-docs/maker/data-platform/access-migrate-linked-tables.md).
  The twin maintains them on every row, also where a schema file leaves them out, and ignores a payload's
  values for them.
- A lookup reads back as ``_<column>_value``, a computed, read-only property (https://github.com/MicrosoftDocs/
  powerapps-docs/blob/b2fd89245749c68f80ed94904fec6d3e2f0e498c/powerapps-docs/developer/data-platform/
  webapi/web-api-properties.md, "Lookup properties").
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from dualbus.d365 import DV_EXTENSION_COLUMNS, DvKey, DvTable, dataverse_tables, lookup_value_column

__all__ = [
    "SYSTEM_COLUMNS",
    "TABLES",
    "UNPREPARED_TABLES",
    "properties",
    "served_tables",
    "stored_column",
    "stored_key",
]

# How the platform columns are stored and read: lookups to systemuser show up as their lookup properties.
SYSTEM_COLUMNS = frozenset(
    {"versionnumber", "createdon", "modifiedon", *map(lookup_value_column, ("createdby", "modifiedby"))}
)


def served_tables() -> Mapping[str, DvTable]:
    """Every table of d365/dataverse by entity set, each extended with dualbus's prerequisite columns."""
    return MappingProxyType({name: _extended(table) for name, table in dataverse_tables().items()})


def _extended(table: DvTable) -> DvTable:
    return table.model_copy(update={"columns": {**table.columns, **DV_EXTENSION_COLUMNS}})


def stored_column(table: DvTable, column: str) -> str:
    """The property a column's value is stored and read under: ``_<column>_value`` for a lookup."""
    definition = table.columns.get(column)
    return lookup_value_column(column) if definition is not None and definition.is_lookup else column


def stored_key(table: DvTable, key: DvKey) -> tuple[str, ...]:
    """The stored properties of an alternate key's columns, in key order."""
    return tuple(stored_column(table, column) for column in key.columns)


def properties(table: DvTable) -> frozenset[str]:
    """The structural properties a row of the table has: its columns as stored, and the platform's.

    Worked out once per table (tables are frozen): every request checks its names against them, and working
    them out from a table's columns took about a third of a write's time.
    """
    known = _PROPERTIES.get(id(table))
    if known is None:
        known = _PROPERTIES[id(table)] = (
            table,
            frozenset(stored_column(table, column) for column in table.columns) | SYSTEM_COLUMNS,
        )
    return known[1]


# Table id -> (the table, its properties). Holding the table keeps its id from going to another object; the
# tables are made once (TABLES) or a few per test run, so this holds a few dozen entries.
_PROPERTIES: dict[int, tuple[DvTable, frozenset[str]]] = {}


TABLES: Mapping[str, DvTable] = served_tables()
# The tables of an environment not yet prepared for dualbus (docs/deploy.md): the published columns alone.
UNPREPARED_TABLES: Mapping[str, DvTable] = MappingProxyType(dict(dataverse_tables()))
