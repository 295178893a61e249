"""The transform engine: pure functions from a source row to a change for the other side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeGuard

from dualbus.shared.errors import LookupUnresolvedError, TransformError
from dualbus.shared.maps._changes import DataverseChange, FoChange, LookupBinding
from dualbus.shared.maps._fields import FieldMap, LookupMap, Scalar, Side, other_side, scalar_key
from dualbus.shared.maps._table import TableMap

__all__ = ["natural_key", "passes_source_filter", "to_dataverse", "to_fo"]

Record = Mapping[str, object]


class _Omit:
    """The source row does not carry the field: leave the target's value alone."""


_OMIT: Final = _Omit()


def to_dataverse(table_map: TableMap, fo_record: Record) -> DataverseChange:
    """Map an F&O row to the Dataverse change it implies (the source filter is the caller's business)."""
    _require_direction(table_map, "dataverse")
    payload = _map_fields(table_map, "dataverse", fo_record)
    bindings = tuple(
        binding
        for lookup in table_map.lookups_towards("dataverse")
        if (binding := _bind(table_map, lookup, fo_record)) is not None
    )
    natural = {b.navigation: b.natural_value() for b in bindings}
    key = _key(table_map, "dataverse", {**payload, **natural})
    return DataverseChange(table_map.name, table_map.dataverse_table, key, payload, bindings)


def to_fo(table_map: TableMap, dataverse_record: Record) -> FoChange:
    """Map a Dataverse row (lookups expanded to their key columns) to the F&O change it implies."""
    _require_direction(table_map, "fo")
    payload = _map_fields(table_map, "fo", dataverse_record)
    _merge_lookups(table_map, dataverse_record, payload)
    return FoChange(table_map.name, table_map.fo_entity, _key(table_map, "fo", payload), payload)


def natural_key(table_map: TableMap, side: Side, record: Record) -> dict[str, Scalar]:
    """The natural key of a row on ``side``, by key field; a Dataverse lookup reads as its natural value."""
    values: dict[str, object] = dict(record)
    if side == "dataverse":
        for part in table_map.dataverse_key:
            lookup = table_map.lookup(part)
            if lookup is not None and part in record:
                values[part] = _single_value(table_map, lookup, record[part])
    return _key(table_map, side, values)


def passes_source_filter(table_map: TableMap, side: Side, record: Record) -> bool:
    """Whether a row of ``side`` is one this map takes (e.g. only organisation customers)."""
    conditions = table_map.source_filter.fo if side == "fo" else table_map.source_filter.dataverse
    row = dict(record)
    return all(condition.holds(row) for condition in conditions)


def _require_direction(table_map: TableMap, target: Side) -> None:
    if not table_map.carries(target):
        raise TransformError(f"this map goes {table_map.direction.value} only", map_name=table_map.name)


def _key(table_map: TableMap, side: Side, values: Mapping[str, object]) -> dict[str, Scalar]:
    key: dict[str, Scalar] = {}
    for part in table_map.key_on(side):
        value = values.get(part)
        if value is None or value == "" or not _is_scalar(value):
            raise TransformError(
                f"natural key part is missing or not a plain value: {value!r}",
                map_name=table_map.name,
                field=part,
            )
        key[part] = value
    return key


def _map_fields(table_map: TableMap, target: Side, record: Record) -> dict[str, Scalar | None]:
    payload: dict[str, Scalar | None] = {}
    for field in table_map.fields_towards(target):
        value = _field_value(table_map, field, target, record)
        name = field.name_on(target)
        if not isinstance(value, _Omit) and name is not None:
            payload[name] = value
    return payload


def _field_value(table_map: TableMap, field: FieldMap, target: Side, record: Record) -> Scalar | _Omit | None:
    if field.constant is not None:
        return field.constant
    if field.compose is not None:
        return _composed(table_map, field, record)
    source = other_side(target)
    name = field.name_on(source) or ""
    value = record.get(name)
    if value == "" and source == "fo":
        value = None  # F&O holds no null: its empty string is "no value", which Dataverse holds as null
    if value is None:
        default = field.default_for(target)
        # A default stands for the source's null, not for a field the source did not send: that one is left
        # alone on the target, as every absent field is (a product's decimal precision was reset to 0).
        if default is not None and name in record:
            return default
        if field.required:
            raise TransformError("a required value is missing", map_name=table_map.name, field=name)
        if name not in record:
            return _OMIT
        # F&O refuses a null for a field that cannot hold one (a credit limit): it gets F&O's "no value".
        return field.fo_empty if target == "fo" else None
    return _convert(table_map, field, target, value)


def _composed(table_map: TableMap, field: FieldMap, record: Record) -> str:
    parts = [record.get(name) for name in field.compose or ()]
    if any(part is None or part == "" or not _is_scalar(part) for part in parts):
        raise TransformError(
            f"cannot compose {field.dataverse!r} from {list(field.compose or ())}: a part is missing",
            map_name=table_map.name,
            field=field.dataverse or "",
        )
    return "".join(str(part) for part in parts)


def _convert(table_map: TableMap, field: FieldMap, target: Side, value: object) -> Scalar:
    source = other_side(target)
    name = field.name_on(source) or ""
    if field.value_map is not None:
        mapped = field.mapped(value, to=target)
        if mapped is not None:
            return mapped
        known = ", ".join(repr(p.fo if source == "fo" else p.dataverse) for p in field.value_map)
        raise TransformError(
            f"value {value!r} is not in the value map (known: {known})", map_name=table_map.name, field=name
        )
    if field.type is None or not field.type.accepts(value) or not _is_scalar(value):
        raise TransformError(
            f"expected a {field.type} value, got {type(value).__name__} {value!r}",
            map_name=table_map.name,
            field=name,
        )
    # The value came from one side and goes to the other, so it must fit both; the target is named first.
    for side in (target, source):
        problem = _limit_problem(field, side, value)
        if problem is not None:
            raise TransformError(problem, map_name=table_map.name, field=name)
    return value


def _limit_problem(field: FieldMap, side: Side, value: Scalar) -> str | None:
    """Why ``value`` does not fit ``side``'s length or number range for this field, or None."""
    limit = field.max_length_on(side)
    if isinstance(value, str):
        if limit is None or len(value) <= limit:
            return None
        return f"{len(value)} characters is over the maximum of {limit} for {_where(field, side)}"
    low, high = field.bounds_on(side)
    if isinstance(value, bool) or ((low is None or value >= low) and (high is None or value <= high)):
        return None
    return f"{value!r} is outside the range [{low}, {high}] that {_where(field, side)} holds"


def _where(field: FieldMap, side: Side) -> str:
    # Worked out only for a value that does not fit: most values fit, and this text is no cheap part.
    return f"{side} {field.name_on(side) or field.label()!r}"


def _bind(table_map: TableMap, lookup: LookupMap, record: Record) -> LookupBinding | None:
    sources = list(lookup.key.values())
    if any(source not in record for source in sources) and not lookup.required:
        return None
    values = {column: record.get(source) for column, source in lookup.key.items()}
    if any(value is None or value == "" for value in values.values()):
        if lookup.required:
            raise LookupUnresolvedError(
                f"no value to look up in {lookup.target_table} (from {sources})",
                map_name=table_map.name,
                field=lookup.dataverse,
            )
        return LookupBinding(lookup.dataverse, lookup.target_table, None)
    key: dict[str, Scalar] = {}
    for column, value in values.items():
        if not _is_scalar(value):
            raise TransformError(
                f"lookup value {value!r} is not a plain value",
                map_name=table_map.name,
                field=lookup.key[column],
            )
        key[column] = value
    return LookupBinding(lookup.dataverse, lookup.target_table, key)


def _merge_lookups(table_map: TableMap, record: Record, payload: dict[str, Scalar | None]) -> None:
    cleared: list[LookupMap] = []
    for lookup in table_map.lookups_towards("fo"):
        row = record.get(lookup.dataverse)
        if row is None:
            if lookup.required:
                raise LookupUnresolvedError(
                    f"the row has no {lookup.target_table} reference",
                    map_name=table_map.name,
                    field=lookup.dataverse,
                )
            if lookup.dataverse in record:
                cleared.append(lookup)
            continue
        for source, value in _lookup_values(table_map, lookup, row).items():
            _put(table_map, payload, source, value)
    # A cleared lookup empties only the F&O fields that no present lookup has filled (dataAreaId stays),
    # with the empty string F&O holds for "no reference" (its references are codes; it holds no null).
    for lookup in cleared:
        for source in lookup.key.values():
            payload.setdefault(source, "")


def _lookup_values(table_map: TableMap, lookup: LookupMap, row: object) -> dict[str, Scalar]:
    if not isinstance(row, Mapping):
        return {next(iter(lookup.key.values())): _single_value(table_map, lookup, row)}
    # An expanded row may omit key columns that are themselves lookups (its company): skip those.
    values = {source: row[column] for column, source in lookup.key.items() if column in row}
    if not values:
        raise LookupUnresolvedError(
            f"the expanded row carries none of {list(lookup.key)}",
            map_name=table_map.name,
            field=lookup.dataverse,
        )
    for source, value in values.items():
        if not _is_scalar(value):
            raise TransformError(
                f"lookup value {value!r} is not a plain value", map_name=table_map.name, field=source
            )
    return values


def _single_value(table_map: TableMap, lookup: LookupMap, row: object) -> Scalar:
    """The natural value of a one-column lookup, given expanded (``{"cdm_companycode": "USMF"}``) or plain."""
    column = next(iter(lookup.key))
    value = row.get(column) if isinstance(row, Mapping) else row
    if len(lookup.key) != 1 or not _is_scalar(value):
        raise LookupUnresolvedError(
            f"cannot read a natural value from {row!r}", map_name=table_map.name, field=lookup.dataverse
        )
    return value


def _put(table_map: TableMap, payload: dict[str, Scalar | None], name: str, value: Scalar) -> None:
    current = payload.setdefault(name, value)
    if scalar_key(current) != scalar_key(value):
        raise TransformError(
            f"lookups disagree: {current!r} and {value!r}", map_name=table_map.name, field=name
        )


def _is_scalar(value: object) -> TypeGuard[Scalar]:
    return isinstance(value, str | int | float)  # bool is an int
