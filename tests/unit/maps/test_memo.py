"""What a map derives once (fields, lookups, delete fields, a consumer's routes) equals what a fresh scan of
the map gives, is kept per object, and leaves the maps' equality, hashing and copies as they were."""

from __future__ import annotations

import gc

import pytest

from dualbus.consumers import _changes
from dualbus.shared.maps import TableMap, delete_fields, derived, load_maps
from dualbus.shared.maps._deletes import _delete_fields

MAPS = load_maps()
SIDES = ("fo", "dataverse")


class Owner:
    """Something immutable to derive from (weak references allowed)."""


def test_a_value_is_computed_once_per_owner_and_name():
    owner, other, calls = Owner(), Owner(), []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert [derived(owner, "x", compute) for _ in range(3)] == [1, 1, 1]
    assert derived(owner, "y", compute) == 2
    assert derived(other, "x", compute) == 3


def test_what_an_owner_left_behind_goes_with_it():
    """A new object that happens to get the id of a collected one derives afresh."""
    owner = Owner()
    assert derived(owner, "x", lambda: "first") == "first"
    del owner
    gc.collect()
    assert all(derived(Owner(), "x", lambda: "again") == "again" for _ in range(50))


@pytest.mark.parametrize("table_map", list(MAPS), ids=lambda m: m.name)
def test_derived_map_parts_equal_a_fresh_scan(table_map: TableMap):
    for side in SIDES:
        assert table_map.fields_towards(side) == tuple(
            f for f in table_map.fields if f.direction.carries(side) and f.name_on(side)
        )
        assert table_map.lookups_towards(side) == tuple(
            lookup for lookup in table_map.lookups if lookup.direction.carries(side)
        )
        assert delete_fields(table_map, side) == _delete_fields(table_map, side)
        names = {f.name_on(side) for f in table_map.fields} | {"NoSuchField"}
        for name in names - {None}:
            scanned = next((f for f in table_map.fields if f.name_on(side) == name), None)
            assert table_map.field_named(side, name) is scanned
    for navigation in {lookup.dataverse for lookup in table_map.lookups} | {"nosuch"}:
        scanned = next((lk for lk in table_map.lookups if lk.dataverse == navigation), None)
        assert table_map.lookup(navigation) is scanned


@pytest.mark.parametrize("table_map", list(MAPS), ids=lambda m: m.name)
def test_a_map_stays_equal_and_hashes_as_before(table_map: TableMap):
    fresh = TableMap.model_validate(table_map.model_dump())
    for side in SIDES:
        table_map.fields_towards(side)
        delete_fields(table_map, side)
    assert table_map == fresh
    assert _hash_or_none(table_map) == _hash_or_none(fresh)
    assert table_map.model_dump() == fresh.model_dump()


def _hash_or_none(table_map: TableMap) -> int | None:
    # A map with lookups holds dicts, which pydantic's frozen hash cannot take; that stays as it was.
    try:
        return hash(table_map)
    except TypeError:
        return None


def test_a_copy_with_other_fields_derives_from_its_own():
    table_map = next(m for m in MAPS if len(m.fields_towards("dataverse")) > 1)
    towards = table_map.fields_towards("dataverse")
    fewer = table_map.model_copy(update={"fields": towards[:1]})
    assert fewer.fields_towards("dataverse") == towards[:1]
    assert table_map.fields_towards("dataverse") == towards


@pytest.mark.parametrize("source", SIDES)
def test_a_consumers_route_equals_a_fresh_one(source):
    target = "dataverse" if source == "fo" else "fo"
    for table_map in MAPS:
        entity, area = table_map.table_on(source), table_map.area
        route = _changes._route(MAPS, area, source, entity)
        fresh = _changes._route_of(MAPS, area, source, entity)
        maps = tuple(m for m in MAPS.in_area(area) if m.table_on(source) == entity and m.carries(target))
        if not maps:
            assert route is None
            continue
        assert route == fresh
        assert route is not None
        assert route.table_maps == maps
        assert route.readable == set().union(*(_changes._readable(m, source, target) for m in maps))


def test_an_entity_no_map_takes_is_not_remembered():
    for n in range(20):
        assert _changes._route(MAPS, "customer", "fo", f"Stray{n}") is None
    known = derived(MAPS, ("routes", "customer", "fo"), dict)
    assert not any(name.startswith("Stray") for name in known)
