"""From an event to the target changes it implies: pick the area's maps, transform, or name the problem.

Before transforming, the event must fit its maps (docs/processing.md, Settlement): its key has exactly the
map's source key parts, plain values of the key fields' types, which the data agrees with where it carries
them, and its data names only fields the maps read from the source. A value the maps cannot carry (a type,
an option, a length or a number out of either side's range) is the transform's MappingError.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dualbus.consumers._sink import TargetChange
from dualbus.shared.envelope import Envelope, KeyValue, Operation
from dualbus.shared.errors import RejectedError, Rejection, TransformError
from dualbus.shared.maps import (
    LookupBinding,
    MapSet,
    Scalar,
    Side,
    TableMap,
    delete_fields,
    delete_identity,
    derived,
    natural_key,
    other_side,
    passes_source_filter,
    target_key,
    to_dataverse,
    to_fo,
)
from dualbus.shared.topology import Direction

__all__ = ["target_changes"]


def target_changes(
    envelope: Envelope, *, area: str, direction: Direction, maps: MapSet
) -> list[TargetChange]:
    """The changes one event implies on ``direction``'s target, one per map that takes its entity."""
    if envelope.area != area:
        raise _rejected(envelope, Rejection.MISROUTED, f"it belongs to area {envelope.area!r}, not {area!r}")
    if envelope.origin is not direction.origin:
        origin, applies = envelope.origin.value, direction.origin.value
        problem = f"it comes from {origin}; {direction.value} applies changes from {applies}"
        raise _rejected(envelope, Rejection.MISROUTED, problem)
    source, target = direction.origin.side, direction.target.side
    route = _route(maps, area, source, envelope.entity)
    if route is None:
        raise TransformError(f"no map in area {area!r} takes {source} entity {envelope.entity!r} to {target}")
    _check_fit(envelope, route, source)
    changes = (_change(m, envelope, source) for m in route.table_maps)
    return [change for change in changes if change is not None]


@dataclass(frozen=True, slots=True)
class _Route:
    """The maps that take one source entity of an area, and every source name they read."""

    table_maps: tuple[TableMap, ...]
    readable: frozenset[str]


def _route(maps: MapSet, area: str, source: Side, entity: str) -> _Route | None:
    """The maps are fixed for a consumer's life: their route is worked out once per entity (known ones only:
    an entity no map takes is not remembered, so that stray names cannot grow the memo)."""
    known = derived(maps, ("routes", area, source), _no_routes)
    if entity in known:
        return known[entity]
    route = _route_of(maps, area, source, entity)
    if route is not None:
        known[entity] = route
    return route


def _no_routes() -> dict[str, _Route]:
    return {}


def _route_of(maps: MapSet, area: str, source: Side, entity: str) -> _Route | None:
    target = other_side(source)
    table_maps = tuple(m for m in maps.in_area(area) if m.table_on(source) == entity and m.carries(target))
    if not table_maps:
        return None
    return _Route(table_maps, frozenset().union(*(_readable(m, source, target) for m in table_maps)))


def _check_fit(envelope: Envelope, route: _Route, source: Side) -> None:
    for table_map in route.table_maps:
        problem = _key_problem(table_map, source, envelope.key)
        problem = problem or _agreement_problem(table_map, source, envelope)
        if problem is not None:
            raise _rejected(envelope, Rejection.KEY_MISMATCH, f"map {table_map.name!r}: {problem}")
    if not route.readable.issuperset(envelope.data):
        unknown = sorted(set(envelope.data) - route.readable)
        names = ", ".join(map(repr, unknown[:8]))
        problem = f"its data holds {names}, which no map of {envelope.entity} reads"
        raise _rejected(envelope, Rejection.UNKNOWN_FIELD, problem)


def _key_problem(table_map: TableMap, source: Side, key: Mapping[str, KeyValue]) -> str | None:
    wanted = table_map.key_on(source)
    if not _same_names(key, table_map, source):
        return f"the key names {sorted(key)}, the map's {source} key is {list(wanted)}"
    for part in wanted:
        field = table_map.field_named(source, part)
        if field is not None and field.type is not None and not field.type.accepts(key[part]):
            return f"key part {part!r} is {type(key[part]).__name__} {key[part]!r}, not a {field.type.value}"
    return None


def _same_names(key: Mapping[str, KeyValue], table_map: TableMap, source: Side) -> bool:
    # sorted(key) == sorted(wanted) without sorting: the key's names are unique, so the two lists are equal
    # exactly when they are as long and hold the same names.
    wanted = table_map.key_on(source)
    names = derived(table_map, ("key_names", source), lambda: frozenset(wanted))
    return len(key) == len(wanted) and key.keys() == names


def _agreement_problem(table_map: TableMap, source: Side, envelope: Envelope) -> str | None:
    """Where the data carries key parts too, they must name the same record as the key."""
    carried = {part: envelope.data[part] for part in table_map.key_on(source) if part in envelope.data}
    if not carried:
        return None
    try:
        from_data = natural_key(table_map, source, {**envelope.key, **carried})
    except TransformError as exc:
        return f"the data's key values are no key: {exc}"
    differing = [part for part in carried if _plain(from_data[part]) != envelope.key[part]]
    return f"the data says {', '.join(differing)} is not what the key says" if differing else None


def _plain(value: Scalar) -> KeyValue:
    # As producers write keys: integers stay, anything else is text.
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _readable(table_map: TableMap, source: Side, target: Side) -> set[str]:
    """Every name of ``source`` the map reads: key, carried fields, lookups, filter and delete fields."""
    names: set[str] = {*table_map.key_on(source), *delete_fields(table_map, source)}
    for field in table_map.fields_towards(target):
        names.update(n for n in (field.name_on(source), *(field.compose or ())) if n)
    for lookup in table_map.lookups_towards(target):
        names.update(lookup.key.values() if source == "fo" else (lookup.dataverse,))
    conditions = table_map.source_filter.fo if source == "fo" else table_map.source_filter.dataverse
    names.update(condition.field for condition in conditions)
    return names


def _rejected(envelope: Envelope, reason: Rejection, problem: str) -> RejectedError:
    return RejectedError(f"event {envelope.id}: {problem}", reason=reason)


def _change(table_map: TableMap, envelope: Envelope, source: Side) -> TargetChange | None:
    if envelope.operation is Operation.DELETE:
        # Source filters do not apply: a delete carries only what names the target row, not the filter's
        # fields, and a row the map never took is simply not found on the target.
        key = _delete_key(table_map, source, envelope)
        if source == "dataverse":
            return _target_change(table_map, envelope, key=key)
        fields, lookups = _delete_identity(table_map, envelope)
        return _target_change(table_map, envelope, key=key, fields=fields, lookups=lookups)
    record = {**envelope.data, **envelope.key}
    # A row the map does not take (e.g. a person customer) is done with, not an error.
    if not passes_source_filter(table_map, source, record):
        return None
    if source == "fo":
        dataverse = to_dataverse(table_map, record)
        return _target_change(
            table_map, envelope, key=dataverse.key, fields=dataverse.payload, lookups=dataverse.lookups
        )
    fo = to_fo(table_map, record)
    return _target_change(table_map, envelope, key=fo.key, fields=fo.payload)


def _target_change(
    table_map: TableMap,
    envelope: Envelope,
    *,
    key: Mapping[str, Scalar],
    fields: Mapping[str, Scalar | None] | None = None,
    lookups: tuple[LookupBinding, ...] = (),
) -> TargetChange:
    return TargetChange(
        table_map=table_map,
        key=key,
        fields=fields or {},
        lookups=lookups,
        delete=envelope.operation is Operation.DELETE,
        source_version=envelope.source_version,
        base_version=envelope.base_version,
        repair=envelope.repair,
    )


def _delete_identity(
    table_map: TableMap, envelope: Envelope
) -> tuple[Mapping[str, Scalar | None], tuple[LookupBinding, ...]]:
    """What an F&O delete's values give the Dataverse row beyond its key (``shared.maps.delete_identity``):
    the sink deletes the row only if it still holds them. Values the map cannot carry give nothing to
    compare, and the delete goes on as it did without them."""
    try:
        return delete_identity(table_map, {**envelope.data, **envelope.key})
    except TransformError:
        return {}, ()


def _delete_key(table_map: TableMap, source: Side, envelope: Envelope) -> dict[str, Scalar]:
    """The target row a delete removes, from its source key and the values its data carries for that."""
    values: dict[str, object] = {**envelope.data, **envelope.key}
    try:
        return target_key(table_map, source, values)
    except TransformError as exc:
        # Also when a lookup feeding the key cannot be read: what is missing is the map's way from one
        # key to the other (MappingError), not a row a lookup points at.
        raise TransformError(
            f"the target key of a delete cannot be worked out from the {source} key {envelope.key} "
            f"and the delete's data {sorted(envelope.data)} ({exc})",
            map_name=table_map.name,
        ) from exc
