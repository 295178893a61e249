"""What a delete must carry so that the consumer can name the row to delete on the other side.

A delete travels without the row's state, yet the two sides may key a record differently (vendor contacts:
party number and vendor in F&O, contact person id in Dataverse). ``delete_fields`` names the source values
that the target's key is built from beyond the source key; ``target_key`` builds it from them.
"""

from __future__ import annotations

from collections.abc import Mapping

from dualbus.shared.maps._changes import LookupBinding
from dualbus.shared.maps._engine import to_dataverse, to_fo
from dualbus.shared.maps._fields import FieldMap, LookupMap, Scalar, Side, other_side
from dualbus.shared.maps._memo import derived
from dualbus.shared.maps._table import TableMap

__all__ = ["delete_fields", "delete_identity", "target_key"]


def delete_fields(table_map: TableMap, source: Side) -> tuple[str, ...]:
    """The source names a delete carries beside the source key, so that the target key can be worked out."""
    # The map is frozen: worked out once per map and side (a consumer checks every message against it).
    return derived(table_map, ("delete_fields", source), lambda: _delete_fields(table_map, source))


def _delete_fields(table_map: TableMap, source: Side) -> tuple[str, ...]:
    have = set(table_map.key_on(source))
    needed: list[str] = []
    for part in table_map.key_on(other_side(source)):
        ways = _ways(table_map, source, part)
        # A part the source key already determines (a constant, or a company lookup) needs nothing more.
        if ways and not any(set(way) <= have for way in ways):
            needed.extend(name for name in ways[0] if name not in have)
            have.update(ways[0])
    return tuple(dict.fromkeys(needed))


def target_key(table_map: TableMap, source: Side, values: Mapping[str, object]) -> dict[str, Scalar]:
    """The target row's natural key from the source key and the delete's values (``{**data, **key}``).

    Only the fields and lookups that feed the target's key take part; TransformError when ``values`` do not
    determine it (a delete published without its values, from a producer's older index entry).
    """
    target = other_side(source)
    keyed = derived(table_map, ("keyed_towards", target), lambda: _keyed(table_map, target))
    change = to_dataverse(keyed, values) if target == "dataverse" else to_fo(keyed, values)
    return dict(change.key)


def delete_identity(
    table_map: TableMap, values: Mapping[str, object]
) -> tuple[dict[str, Scalar | None], tuple[LookupBinding, ...]]:
    """The Dataverse columns and lookups that give F&O's key beyond Dataverse's, as an F&O delete's key and
    values (``{**data, **key}``) spell them; none for a map whose keys name a record alike on both sides.

    F&O may key a record by more than Dataverse does (a vendor contact by its vendor too): a contact moved to
    another vendor keeps its Dataverse key, and the delete of it under its old vendor names the same
    Dataverse row. What the delete's values give beyond that key (the old vendor) tells the consumer whether
    the row still is the record deleted. Constants say nothing of one record, and are left out.
    """
    # Only the columns that give F&O's key beyond Dataverse's (what a Dataverse delete carries): another
    # column a key part is copied to (a unit's display name, first its symbol) may be edited freely. Most
    # maps have none, and their deletes are not transformed a second time for nothing.
    naming = set(delete_fields(table_map, "dataverse"))
    if not naming:
        return {}, ()
    given = set(values)
    identity = derived(
        table_map, ("identity_towards_dataverse", frozenset(given)), lambda: _spelt(table_map, given)
    )
    change = to_dataverse(identity, values)
    return (
        {name: value for name, value in change.payload.items() if name in naming},
        tuple(binding for binding in change.lookups if binding.navigation in naming),
    )


def _spelt(table_map: TableMap, given: set[str]) -> TableMap:
    """The map cut down to the fields and lookups towards Dataverse that F&O names in ``given`` spell."""
    fields = tuple(
        f
        for f in table_map.fields_towards("dataverse")
        if f.constant is None and (sources := _field_sources(f, "fo")) and set(sources) <= given
    )
    lookups = tuple(lk for lk in table_map.lookups_towards("dataverse") if set(lk.key.values()) <= given)
    return table_map.model_copy(update={"fields": fields, "lookups": lookups})


def _keyed(table_map: TableMap, target: Side) -> TableMap:
    """The map cut down to the fields and lookups that feed ``target``'s key."""
    parts = set(table_map.key_on(target))
    return table_map.model_copy(
        update={
            "fields": tuple(f for f in table_map.fields_towards(target) if f.name_on(target) in parts),
            "lookups": tuple(lk for lk in table_map.lookups_towards(target) if _feeds(lk, target) & parts),
        }
    )


def _ways(table_map: TableMap, source: Side, part: str) -> list[tuple[str, ...]]:
    """Each set of source names that alone gives the target key part ``part``, fields first."""
    target = other_side(source)
    towards = table_map.fields_towards(target)
    fields = [_field_sources(f, source) for f in towards if f.name_on(target) == part]
    # From Dataverse a lookup's navigation property holds the expanded row (or the natural value).
    lookups = [
        tuple(lookup.key.values()) if source == "fo" else (lookup.dataverse,)
        for lookup in table_map.lookups_towards(target)
        if part in _feeds(lookup, target)
    ]
    return [*fields, *lookups]


def _field_sources(field: FieldMap, source: Side) -> tuple[str, ...]:
    if field.constant is not None:
        return ()
    if field.compose is not None:
        return field.compose
    name = field.name_on(source)
    return (name,) if name else ()


def _feeds(lookup: LookupMap, target: Side) -> set[str]:
    """The names a lookup writes on ``target``: its navigation property, or the F&O fields of its key."""
    return {lookup.dataverse} if target == "dataverse" else set(lookup.key.values())
