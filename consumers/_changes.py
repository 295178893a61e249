"""From an event to the target changes it implies: pick the area's maps, transform, or name the problem."""

from __future__ import annotations

from collections.abc import Mapping

from consumers._sink import TargetChange
from shared.envelope import Envelope, Operation
from shared.errors import EnvelopeError, TransformError
from shared.maps import (
    LookupBinding,
    MapSet,
    Scalar,
    Side,
    TableMap,
    passes_source_filter,
    target_key,
    to_dataverse,
    to_fo,
)
from shared.topology import Direction

__all__ = ["target_changes"]


def target_changes(
    envelope: Envelope, *, area: str, direction: Direction, maps: MapSet
) -> list[TargetChange]:
    """The changes one event implies on ``direction``'s target, one per map that takes its entity."""
    if envelope.area != area:
        raise EnvelopeError(f"event {envelope.id} belongs to area {envelope.area!r}, not {area!r}")
    if envelope.origin is not direction.origin:
        raise EnvelopeError(
            f"event {envelope.id} comes from {envelope.origin.value}, but {direction.value} applies "
            f"changes from {direction.origin.value}"
        )
    source: Side = "fo" if direction is Direction.TO_DATAVERSE else "dataverse"
    target: Side = "dataverse" if source == "fo" else "fo"
    table_maps = [
        m for m in maps.in_area(area) if m.table_on(source) == envelope.entity and m.carries(target)
    ]
    if not table_maps:
        raise TransformError(f"no map in area {area!r} takes {source} entity {envelope.entity!r} to {target}")
    changes = (_change(m, envelope, source) for m in table_maps)
    return [change for change in changes if change is not None]


def _change(table_map: TableMap, envelope: Envelope, source: Side) -> TargetChange | None:
    if envelope.operation is Operation.DELETE:
        # Source filters do not apply: a delete carries only what names the target row, not the filter's
        # fields, and a row the map never took is simply not found on the target.
        return _target_change(table_map, envelope, key=_delete_key(table_map, source, envelope))
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
