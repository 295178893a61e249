"""Hypothesis strategies that build source rows for a table map from the map's own definitions."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from dualbus.shared.maps import FieldMap, FieldType, Side, TableMap

__all__ = ["other_side", "source_record"]

_TEXT = st.characters(blacklist_categories=("Cs",))


def other_side(side: Side) -> Side:
    return "dataverse" if side == "fo" else "fo"


def source_record(table_map: TableMap, source: Side) -> st.SearchStrategy[dict[str, object]]:
    """Rows of ``source`` that the map can carry to the other side: every field and lookup within limits."""
    target = other_side(source)
    parts: dict[str, st.SearchStrategy[object]] = {}
    # A value is needed where the source's key or the target's key reads it, or a field requires it.
    needed = set(table_map.key_on(source))
    for field in table_map.fields_towards(target):
        if field.required or field.name_on(target) in table_map.key_on(target):
            needed.update(n for n in (field.name_on(source), *(field.compose or ())) if n)
    for field in table_map.fields_towards(target):
        name = field.name_on(source)
        if name is None or name in parts:
            continue  # a constant or composed value: nothing of its own to read; or read already
        nullable = name not in needed and field.default_for(target) is None
        parts[name] = _value(field, source, target, nullable=nullable, required=name in needed)
    parts.update(_lookup_parts(table_map, source, target))
    return st.fixed_dictionaries(parts)


def _value(
    field: FieldMap, source: Side, target: Side, *, nullable: bool, required: bool
) -> st.SearchStrategy[object]:
    if field.value_map is not None:
        values: st.SearchStrategy[object] = st.sampled_from(
            [pair.fo if source == "fo" else pair.dataverse for pair in field.value_map]
        )
    else:
        values = _typed(field, source, target, required=required)
    return st.one_of(st.none(), values) if nullable else values


def _typed(field: FieldMap, source: Side, target: Side, *, required: bool) -> st.SearchStrategy[object]:
    if field.type is FieldType.STRING:
        limits = [n for n in (field.max_length_on(source), field.max_length_on(target)) if n is not None]
        return st.text(_TEXT, min_size=1 if required else 0, max_size=min([*limits, 30]))
    if field.type in {FieldType.INTEGER, FieldType.DECIMAL}:
        default = 2**31 if field.type is FieldType.INTEGER else 10**12
        low, high = _bounds(field, source, target, default=default)
        integers = st.integers(min_value=math.ceil(low), max_value=math.floor(high))
        if field.type is FieldType.INTEGER:
            return integers
        return st.one_of(integers, st.floats(min_value=low, max_value=high, allow_nan=False))
    return st.booleans()


def _bounds(field: FieldMap, source: Side, target: Side, *, default: int) -> tuple[float, float]:
    """The numbers both sides hold (the schemas' ranges), within ``±default`` where neither states one."""
    lows = [b for b in (field.bounds_on(source)[0], field.bounds_on(target)[0]) if b is not None]
    highs = [b for b in (field.bounds_on(source)[1], field.bounds_on(target)[1]) if b is not None]
    return max([*lows, -default]), min([*highs, default - 1])


def _lookup_parts(table_map: TableMap, source: Side, target: Side) -> dict[str, st.SearchStrategy[object]]:
    parts: dict[str, st.SearchStrategy[object]] = {}
    names = st.text(_TEXT, min_size=1, max_size=10)
    lookups = table_map.lookups_towards(target)
    if source == "dataverse":
        navigations = {lookup.dataverse for lookup in table_map.lookups}
        for lookup in lookups:
            # Expanded as the Web API returns it: a key column that is itself a lookup (the group's company)
            # does not come back as a plain value; this row's own company lookup supplies it.
            columns = {c: names for c in lookup.key if c not in navigations or len(lookup.key) == 1}
            row = st.fixed_dictionaries(columns)
            parts[lookup.dataverse] = row if lookup.required else st.one_of(st.none(), row)
        return parts
    required = {fo for lookup in lookups if lookup.required for fo in lookup.key.values()}
    for lookup in lookups:
        for fo_field in lookup.key.values():
            parts[fo_field] = names if fo_field in required else st.one_of(st.none(), names)
    return parts
