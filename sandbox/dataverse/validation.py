"""A create or update body read against its table's schema before anything is written, as the Web API does.

Each body property is one of:

- an instance annotation (``@odata.type``): ignored;
- ``<navigation>@odata.bind``: a lookup set to the row the URL names (``associate-disassociate-entities-using-
  web-api``); a navigation property the table lacks is the documented "undeclared property" error, a row that
  does not exist the documented 404, a row of another table a 400 (status and text not documented);
- another annotation of a declared property (``name@OData.Community.Display.V1.FormattedValue``): ignored;
- a platform column (``versionnumber``, ``createdon``, ``modifiedon``, ``_createdby_value``,
  ``_modifiedby_value``): ignored, the platform maintains it;
- the primary id: checked as a GUID, taken by a create (``writes``), ignored by an update;
- a lookup's column or lookup property (``msdyn_company``, ``_msdyn_company_value``): refused, lookups are set
  through their navigation property (status 400 and text not documented);
- any other read-only column: refused (``errors.read_only_column``);
- a column: its value checked against the schema (``value_errors``);
- anything else: the documented "Invalid property" error.

Columns marked ``required`` are not enforced: the reference's RequiredLevel does not tell SystemRequired
from ApplicationRequired, and the Web API does not enforce ApplicationRequired, so the twin cannot tell which
missing value the real service would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from dualbus.d365 import DvTable, lookup_value_column
from dualbus.sandbox.dataverse.errors import (
    DataverseApiError,
    bad_request,
    invalid_property,
    read_only_column,
    undeclared_navigation,
)
from dualbus.sandbox.dataverse.keys import require
from dualbus.sandbox.dataverse.messages import Context
from dualbus.sandbox.dataverse.odata import parse_entity_path
from dualbus.sandbox.dataverse.store import Row
from dualbus.sandbox.dataverse.tables import SYSTEM_COLUMNS, properties
from dualbus.sandbox.dataverse.value_errors import check_value

__all__ = ["apply_payload"]

_BIND = "odata.bind"
# (column, stored property, value) of one accepted body property.
_Change = tuple[str, str, Any]


def apply_payload(
    context: Context,
    table: DvTable,
    row: Row,
    payload: Mapping[str, Any],
    *,
    skip: frozenset[str] = frozenset(),
) -> None:
    """Check every body property, then copy the accepted values into ``row``, except columns in ``skip``."""
    changes = [change for name, value in payload.items() if (change := _read(context, table, name, value))]
    row.update({stored: value for column, stored, value in changes if column not in skip})


def _read(context: Context, table: DvTable, name: str, value: object) -> _Change | None:
    if name.startswith("@") or name in SYSTEM_COLUMNS:
        return None
    target, at, annotation = name.partition("@")
    if at:
        return _annotation(context, table, target, annotation, value)
    return _column_value(table, name, value)


def _column_value(table: DvTable, name: str, value: object) -> _Change | None:
    column = table.columns.get(name)
    if column is None:
        _refuse_unknown(table, name)
    if column.is_lookup:
        # A Customer column has navigation properties of other names, and is no property itself.
        if name in column.targets or not column.targets:
            raise _lookup_written_directly(name)
        raise invalid_property(table.logical_name, name)
    if column.read_only:
        raise read_only_column(table.logical_name, name)
    check_value(table, name, column, value)
    return None if name == table.primary_id else (name, name, value)


def _refuse_unknown(table: DvTable, name: str) -> NoReturn:
    if name in properties(table) and name.startswith("_") and name.endswith("_value"):
        raise _lookup_written_directly(name[1 : -len("_value")])
    raise invalid_property(table.logical_name, name)


def _lookup_written_directly(column: str) -> DataverseApiError:
    # "To change the value of a lookup property, you must change the single-valued navigation property that it
    # represents" (web-api-properties.md); what the service answers instead is not documented.
    return bad_request(
        f"'{column}' is a lookup: change it through its single-valued navigation property with '@{_BIND}'."
    )


def _annotation(
    context: Context, table: DvTable, target: str, annotation: str, value: object
) -> _Change | None:
    if annotation == _BIND:
        return _bind(context, table, target, value)
    if target not in properties(table) and table.navigation(target) is None:
        raise undeclared_navigation(table.entity_set, target)
    return None


def _bind(context: Context, table: DvTable, navigation: str, value: object) -> _Change:
    """The lookup a bind sets and the id of the row it points at (None clears the lookup)."""
    found = table.navigation(navigation)
    if found is None:
        raise undeclared_navigation(table.entity_set, navigation)
    column, target_set = found
    if value is None:
        return column, lookup_value_column(column), None
    if not isinstance(value, str):
        raise bad_request(f"The value of '{navigation}@{_BIND}' must be a URL.")
    ref = parse_entity_path(value)
    if ref.entity_set != target_set or ref.is_collection:
        raise bad_request(f"'{navigation}' must point at one row of {target_set}, not '{value}'.")
    target = context.tables[target_set]
    return column, lookup_value_column(column), require(context, target, ref)[target.primary_id]
