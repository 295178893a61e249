"""Key segments: a row named by its primary id or by one of its table's alternate keys, as documented.

"Use an alternate key to reference a record" (https://github.com/MicrosoftDocs/powerapps-docs/blob/
e40bbeb49bf84637609038b88caab9082ef6acd6/powerapps-docs/developer/data-platform/
use-alternate-key-reference-record.md): ``/accounts(<guid>)`` or ``/accounts(accountid=<guid>)``;
``/accounts(accountnumber='ABC123')``; a lookup column inside a key is written as its lookup property,
``/accounts(_primarycontactid_value=<guid>)``. A segment whose names are not exactly the primary key or one
alternate key is refused with the documented message: so is ``msdyn_company=<guid>``, the lookup's bare column
name.

A key value must be a literal of its column's type, text quoted and everything else (GUIDs, numbers, dates
and times) bare, or the segment names no key: the documented message above is OData's
``BadRequest_KeyOrAlternateKeyMismatch``, which its alternate-key resolver raises when a value does not
convert to its key property's type (https://github.com/OData/odata.net/blob/02e4e4773e9db60adda9f97992bb24c2c208fac3/
src/Microsoft.OData.Core/UriParser/Resolver/AlternateKeysODataUriResolver.cs); a key literal is converted by
``LiteralParser``, which takes quotes off a string only and reads a date and time, a GUID or a number without
them (https://github.com/OData/odata.net/blob/05935c6f85283cea2bd25555e452e62ff72af358/src/
Microsoft.OData.Core/UriParser/Parsers/LiteralParser.cs).

A text key value holding one of the characters of ``UNADDRESSABLE`` cannot be used to address a row: "If
the data within a column used in an alternate key contains one of the following characters ``/``, ``<``,
``>``, ``*``, ``%``, ``&``, ``:``, ``\\``, ``?``, ``+``, then retrieve (``GET``), update, or upsert
(``PATCH``) actions don't work" ("Work with alternate keys", https://github.com/MicrosoftDocs/powerapps-docs/blob/
0e238130235c2d24930f4bb6315503a4f3afdc4c/powerapps-docs/developer/data-platform/define-alternate-keys-entity.md).
Such a row can still be made (uniqueness holds) and reached by its id. Binds and deletes by such a key are not
named there, so the twin leaves them be.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dualbus.d365 import DvTable, lookup_value_column
from dualbus.sandbox.dataverse.errors import (
    invalid_key,
    key_not_found,
    object_not_found,
    unaddressable_key_value,
)
from dualbus.sandbox.dataverse.messages import Context
from dualbus.sandbox.dataverse.odata import EntityRef
from dualbus.sandbox.dataverse.store import Row
from dualbus.sandbox.dataverse.tables import stored_column

__all__ = ["UNADDRESSABLE", "RowKey", "check_addressable", "find", "locate", "require", "row_key"]

UNADDRESSABLE = frozenset("/<>*%&:\\?+")
# Column types whose values are Edm.String (sandbox.dataverse.value_errors): their key literals are quoted.
_TEXT_TYPES = frozenset({"String", "Memo", "EntityName"})


@dataclass(frozen=True, slots=True)
class RowKey:
    """What a key segment names: a primary id, or alternate-key values by column (lookups by their id)."""

    row_id: str | None = None
    values: Mapping[str, Any] | None = None


def row_key(table: DvTable, ref: EntityRef) -> RowKey:
    """Check a key segment against the table's keys; the documented 400 when it matches none of them."""
    if ref.row_id is not None:
        return RowKey(row_id=ref.row_id)
    values = ref.key_values or {}
    column_of = {name: _column_named(table, name) for name in values}
    named = {column: values[name] for name, column in column_of.items()}
    columns = frozenset(column for column in named if column is not None)
    fitting = all(_literal_fits(table, c, quoted=n in ref.quoted) for n, c in column_of.items() if c)
    if len(columns) != len(values) or not fitting:
        raise invalid_key(table.logical_name)
    if columns == {table.primary_id}:
        return RowKey(row_id=_primary_id(table, named[table.primary_id]))
    if table.key_named_by(columns) is None:
        raise invalid_key(table.logical_name)
    return RowKey(values={column: value for column, value in named.items() if column is not None})


def check_addressable(table: DvTable, ref: EntityRef) -> None:
    """Refuse a key segment with a text value the Web API cannot address a row by (``UNADDRESSABLE``)."""
    for name, value in (ref.key_values or {}).items():
        column = table.columns.get(name)
        # The documented limit is on the data of a text column: a date-time key's literal has ':' of its own.
        if column is None or column.type not in _TEXT_TYPES or not isinstance(value, str):
            continue
        char = next((char for char in value if char in UNADDRESSABLE), None)
        if char is not None:
            raise unaddressable_key_value(table.logical_name, name, value, char)


def _column_named(table: DvTable, name: str) -> str | None:
    """The column a key property names: a lookup only as ``_<column>_value``, any other column by its name."""
    column = table.columns.get(name)
    if column is not None:
        return None if column.is_lookup else name
    inner = name[1 : -len("_value")] if name.startswith("_") and name.endswith("_value") else ""
    lookup = table.columns.get(inner)
    return inner if lookup is not None and lookup.is_lookup and lookup_value_column(inner) == name else None


def _literal_fits(table: DvTable, column: str, *, quoted: bool) -> bool:
    """Whether a key literal's form (quoted or bare) is that of its column's type."""
    return quoted == (table.columns[column].type in _TEXT_TYPES)


def _primary_id(table: DvTable, value: object) -> str:
    if not isinstance(value, str):
        raise invalid_key(table.logical_name)
    return value.lower()


def locate(context: Context, table: DvTable, ref: EntityRef) -> Row | None:
    """The row a key segment names, or None."""
    return find(context, table, row_key(table, ref))


def require(context: Context, table: DvTable, ref: EntityRef) -> Row:
    """The row a key segment names, or the documented 404 for a missing id or missing key values."""
    key = row_key(table, ref)
    row = find(context, table, key)
    if row is None:
        if key.row_id is not None:
            raise object_not_found(table.logical_name, key.row_id)
        raise key_not_found(table.logical_name)
    return row


def find(context: Context, table: DvTable, key: RowKey) -> Row | None:
    """The row a checked key names, or None."""
    if key.row_id is not None:
        return context.store.get(table.entity_set, key.row_id)
    stored = {stored_column(table, column): value for column, value in (key.values or {}).items()}
    row_id = context.store.find_id(table.entity_set, stored)
    return context.store.get(table.entity_set, row_id) if row_id is not None else None
