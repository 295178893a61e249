"""From an event to the target changes it implies: pick the area's maps, transform, or name the problem."""

from __future__ import annotations

from collections.abc import Mapping

from consumers._sink import TargetChange
from shared.envelope import Envelope, KeyValue, Operation
from shared.errors import EnvelopeError, TransformError
from shared.maps import MapSet, Side, TableMap, passes_source_filter, to_dataverse, to_fo
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
    record = {**envelope.data, **envelope.key}
    if envelope.operation is Operation.DELETE:
        return TargetChange(
            table_map=table_map,
            key=_target_key(table_map, source, envelope.key),
            delete=True,
            source_version=envelope.source_version,
            time=envelope.time,
            repair=envelope.repair,
        )
    # A row the map does not take (e.g. a person customer) is done with, not an error.
    if not passes_source_filter(table_map, source, record):
        return None
    if source == "fo":
        dataverse = to_dataverse(table_map, record)
        fields, lookups, key = dataverse.payload, dataverse.lookups, dataverse.key
    else:
        fo = to_fo(table_map, record)
        fields, lookups, key = fo.payload, (), fo.key
    return TargetChange(
        table_map=table_map,
        key=key,
        fields=fields,
        lookups=lookups,
        source_version=envelope.source_version,
        time=envelope.time,
        repair=envelope.repair,
    )


def _target_key(table_map: TableMap, source: Side, key: Mapping[str, KeyValue]) -> dict[str, KeyValue]:
    """A delete carries only the source key; its parts match the target key's position by position."""
    target: Side = "dataverse" if source == "fo" else "fo"
    mapped: dict[str, KeyValue] = {}
    for source_part, target_part in zip(table_map.key_on(source), table_map.key_on(target), strict=True):
        if source_part not in key:
            raise TransformError(
                "the delete's key lacks this part", map_name=table_map.name, field=source_part
            )
        mapped[target_part] = key[source_part]
    return mapped
