"""Checking a table map against the published schemas of both systems (``d365``): no unknown names.

Every entity, field, column, key, lookup and value a map names must exist on the side it names, with a type
that fits; string lengths and number ranges the schemas state become the map's limits, so that the transform
refuses a value a side cannot hold instead of sending it. A map that fails is refused at load, naming the file
and the JSON path, so that no name reaches a real tenant unchecked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dualbus.d365 import DvColumn, DvTable, FoEntity, FoField
from dualbus.shared.maps._fields import FieldMap, FieldType, LookupMap, Scalar, Side
from dualbus.shared.maps._table import TableMap

__all__ = ["bind_schemas", "schema_problems"]

# Which schema types a map's field type may stand for, per side.
_FO_TYPES: Mapping[FieldType, frozenset[str]] = {
    FieldType.STRING: frozenset({"Edm.String", "Edm.Guid", "Edm.DateTimeOffset", "Edm.Date"}),
    FieldType.INTEGER: frozenset({"Edm.Int32", "Edm.Int64"}),
    FieldType.DECIMAL: frozenset({"Edm.Decimal", "Edm.Double", "Edm.Int32", "Edm.Int64"}),
    FieldType.BOOLEAN: frozenset({"Edm.Boolean"}),
}
_DV_TYPES: Mapping[FieldType, frozenset[str]] = {
    FieldType.STRING: frozenset({"String", "Memo", "DateTime", "Uniqueidentifier", "EntityName"}),
    FieldType.INTEGER: frozenset({"Integer", "BigInt", "Picklist", "State", "Status"}),
    FieldType.DECIMAL: frozenset({"Decimal", "Double", "Money", "Integer", "BigInt"}),
    FieldType.BOOLEAN: frozenset({"Boolean"}),
}


def schema_problems(
    table_map: TableMap, entities: Mapping[str, FoEntity], tables: Mapping[str, DvTable]
) -> list[str]:
    """Every way ``table_map`` disagrees with the schemas, as ``$.path: problem`` lines (empty when none)."""
    entity, table = entities.get(table_map.fo_entity), tables.get(table_map.dataverse_table)
    problems = []
    if entity is None:
        problems.append(f"$.fo_entity: F&O has no entity set {table_map.fo_entity!r}")
    if table is None:
        problems.append(f"$.dataverse_table: Dataverse has no table {table_map.dataverse_table!r}")
    if entity is None or table is None:
        return problems
    problems.extend(_key_problems(table_map, entity, table))
    for index, field in enumerate(table_map.fields):
        problems.extend(f"$.fields[{index}]{p}" for p in _field_problems(field, entity, table))
    for index, lookup in enumerate(table_map.lookups):
        problems.extend(f"$.lookups[{index}]{p}" for p in _lookup_problems(lookup, entity, table, tables))
    problems.extend(_filter_problems(table_map, entity, table))
    return problems


# What a Dataverse number column can hold when its schema states no range: the platform's supported values
# (Microsoft.Xrm.Sdk.Metadata: IntegerAttributeMetadata, BigIntAttributeMetadata, DecimalAttributeMetadata,
# DoubleAttributeMetadata, MoneyAttributeMetadata .MinSupportedValue / .MaxSupportedValue).
_DV_RANGES: Mapping[str, tuple[int, int]] = {
    "Integer": (-(2**31), 2**31 - 1),
    "BigInt": (-(2**63), 2**63 - 1),
    "Decimal": (-100_000_000_000, 100_000_000_000),
    "Double": (-100_000_000_000, 100_000_000_000),
    "Money": (-922_337_203_685_477, 922_337_203_685_477),
}
# F&O's integer types; an Edm.Decimal states no range in $metadata.
_FO_RANGES: Mapping[str, tuple[int, int]] = {
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}
_NUMBERS = frozenset({FieldType.INTEGER, FieldType.DECIMAL})


def bind_schemas(
    table_map: TableMap, tables: Mapping[str, DvTable], entities: Mapping[str, FoEntity] | None = None
) -> TableMap:
    """The map with each field's string lengths and number ranges on both sides, and what F&O holds for no
    value, taken from the schemas."""
    table, entity = tables[table_map.dataverse_table], (entities or {}).get(table_map.fo_entity)
    fields = []
    for field in table_map.fields:
        limits = _dv_limits(field, table.columns.get(field.dataverse or ""))
        if entity is not None:
            limits |= _fo_limits(field, entity.fields.get(field.fo or ""))
        fields.append(field.model_copy(update=limits) if limits else field)
    return table_map.model_copy(update={"fields": tuple(fields)})


def _dv_limits(field: FieldMap, column: DvColumn | None) -> dict[str, Any]:
    if column is None or field.value_map is not None:
        return {}
    if field.type is FieldType.STRING and column.max_length:
        return {"dataverse_max_length": column.max_length}
    if field.type not in _NUMBERS or column.type not in _DV_RANGES:
        return {}
    low, high = _DV_RANGES[column.type]
    return {
        "dataverse_min": low if column.min is None else column.min,
        "dataverse_max": high if column.max is None else column.max,
    }


def _fo_limits(field: FieldMap, fo_field: FoField | None) -> dict[str, Any]:
    if fo_field is None:
        return {}
    limits: dict[str, Any] = {}
    empty = fo_field.empty_value
    # An enum's element of value 0 counts only where the value map carries it, so that it maps back.
    if empty is not None and field.constant is None and field.accepts(empty, "fo"):
        limits["fo_empty"] = empty
    if field.value_map is not None:
        return limits
    if field.type is FieldType.STRING and fo_field.max_length and field.fo_max_length is None:
        limits["fo_max_length"] = fo_field.max_length
    if field.type in _NUMBERS and fo_field.type in _FO_RANGES:
        limits["fo_min"], limits["fo_max"] = _FO_RANGES[fo_field.type]
    return limits


def _key_problems(table_map: TableMap, entity: FoEntity, table: DvTable) -> Iterator[str]:
    # Writes address F&O rows by the entity's own key; a map that only reads F&O may key its events by
    # other fields of the entity (internal organisations are found by party number).
    if table_map.carries("fo") and tuple(table_map.fo_key) != entity.keys:
        yield f"$.fo_key: {entity.entity_set}'s key is {list(entity.keys)}, not {list(table_map.fo_key)}"
    for part in table_map.fo_key:
        if part not in entity.fields:
            yield f"$.fo_key: {entity.entity_set} has no field {part!r}"
    columns = frozenset(_column_of(table, part) for part in table_map.dataverse_key)
    if table.key_named_by(columns) is None:
        known = [list(k.columns) for k in table.alternate_keys]
        wanted = list(table_map.dataverse_key)
        yield f"$.dataverse_key: {table.entity_set} has no alternate key {wanted} (its keys: {known})"


def _column_of(table: DvTable, part: str) -> str:
    """The column behind a key part: a lookup's navigation property names its column."""
    found = table.navigation(part)
    return found[0] if found is not None else part


def _field_problems(field: FieldMap, entity: FoEntity, table: DvTable) -> Iterator[str]:
    for name in field.compose or ():
        if name not in entity.fields:
            yield f".compose: {entity.entity_set} has no field {name!r}"
    if field.fo is not None:
        fo_field = entity.fields.get(field.fo)
        if fo_field is None:
            yield f".fo: {entity.entity_set} has no field {field.fo!r}"
        else:
            yield from (f".fo{p}" for p in _fo_fit(field, fo_field, entity))
    if field.dataverse is not None:
        column = table.columns.get(field.dataverse)
        if column is None:
            yield f".dataverse: {table.entity_set} has no column {field.dataverse!r}"
        elif column.is_lookup:
            yield f".dataverse: {field.dataverse!r} is a lookup: map it under 'lookups'"
        else:
            yield from (f".dataverse{p}" for p in _dv_fit(field, table))


def _fo_fit(field: FieldMap, fo_field: FoField, entity: FoEntity) -> Iterator[str]:
    name = field.fo or ""
    values = _side_values(field, "fo")
    if field.value_map is not None or fo_field.type == "enum":
        for value in values:
            if (problem := entity.problem(name, value)) is not None:
                yield f": {problem}"
        return
    if field.type is not None and fo_field.type not in _FO_TYPES[field.type]:
        yield f": {name!r} is {fo_field.type}, which a {field.type.value} field cannot carry"


def _dv_fit(field: FieldMap, table: DvTable) -> Iterator[str]:
    name = field.dataverse or ""
    column = table.columns[name]
    for value in _side_values(field, "dataverse"):
        if (problem := table.problem(name, value)) is not None:
            yield f": {problem.detail} ({name})"
    if field.value_map is None and field.type is not None and column.type not in _DV_TYPES[field.type]:
        yield f": {name!r} is {column.type}, which a {field.type.value} field cannot carry"
    if column.read_only and field.direction.carries("dataverse"):
        yield f": {name!r} is read-only in Dataverse"


def _side_values(field: FieldMap, side: Side) -> list[Scalar]:
    """The literal values a map writes to ``side``: its value map's, its constant, its default."""
    values: list[Scalar] = [p.fo if side == "fo" else p.dataverse for p in field.value_map or ()]
    if field.constant is not None and field.name_on(side) is not None:
        values.append(field.constant)
    default = field.default_for(side)
    if default is not None:
        values.append(default)
    return values


def _lookup_problems(
    lookup: LookupMap, entity: FoEntity, table: DvTable, tables: Mapping[str, DvTable]
) -> Iterator[str]:
    found = table.navigation(lookup.dataverse)
    if found is None:
        yield f".dataverse: {table.entity_set} has no lookup navigation property {lookup.dataverse!r}"
    elif found[1] != lookup.target_table:
        yield f".target_table: {lookup.dataverse!r} points at {found[1]}, not {lookup.target_table}"
    target = tables.get(lookup.target_table)
    if target is not None and target.key_named_by(frozenset(lookup.key)) is None:
        yield f".key: {lookup.target_table} has no alternate key {sorted(lookup.key)}"
    for source in lookup.key.values():
        if source not in entity.fields:
            yield f".key: {entity.entity_set} has no field {source!r}"


def _filter_problems(table_map: TableMap, entity: FoEntity, table: DvTable) -> Iterator[str]:
    for index, condition in enumerate(table_map.source_filter.fo):
        if condition.field not in entity.fields:
            yield f"$.source_filter.fo[{index}].field: {entity.entity_set} has no field {condition.field!r}"
    for index, condition in enumerate(table_map.source_filter.dataverse):
        if condition.field not in table.columns:
            where = f"$.source_filter.dataverse[{index}].field"
            yield f"{where}: {table.entity_set} has no column {condition.field!r}"
