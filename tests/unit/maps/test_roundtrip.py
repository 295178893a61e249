"""F&O → Dataverse → F&O returns the original values on every two-way field and lookup."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dualbus.shared.maps import Direction, TableMap, load_maps, to_dataverse, to_fo
from tests.unit.maps.strategies import source_record

TWO_WAY = [m for m in load_maps() if m.direction is Direction.TWO_WAY]


def two_way_fo_fields(table_map: TableMap) -> set[str]:
    """The F&O fields a round trip must preserve: two-way fields and the sources of two-way lookups."""
    fields = {
        f.fo for f in table_map.fields if f.direction is Direction.TWO_WAY and f.fo and f.constant is None
    }
    for lookup in table_map.lookups:
        if lookup.direction is Direction.TWO_WAY:
            fields.update(lookup.key.values())
    return fields


def test_there_are_two_way_maps_to_round_trip() -> None:
    """The round trip covers every map dual-write runs both ways: currencies, terms, groups, parties."""
    assert {m.name for m in TWO_WAY} == {
        "currency",
        "payment_terms",
        "customer_groups",
        "customers",
        "customer_contacts",
        "vendor_groups",
        "vendors",
        "vendor_contacts",
    }


def _as_fo_holds(table_map: TableMap, name: str, value: object) -> object:
    """A value as F&O holds it: no null, so a field's "no value" ("" for text and references, 0 for a
    number that cannot be null) where the value is None or ""."""
    if value is not None and value != "":
        return value
    empties = {f.fo: f.fo_empty for f in table_map.fields if f.fo}
    return empties.get(name, "")  # not among the fields: a lookup's code


@pytest.mark.parametrize("table_map", TWO_WAY, ids=lambda m: m.name)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fo_to_dataverse_to_fo_is_identity(table_map: TableMap, data: st.DataObject) -> None:
    """A generated F&O row survives the trip to Dataverse and back unchanged on its two-way fields."""
    original = data.draw(source_record(table_map, "fo"))
    dataverse_row = to_dataverse(table_map, original).as_record()
    back = to_fo(table_map, dataverse_row)
    fields = two_way_fo_fields(table_map)
    assert fields
    expected = {k: _as_fo_holds(table_map, k, original.get(k)) for k in fields}
    assert {k: back.payload.get(k) for k in fields} == expected
    # A key part no F&O field feeds (vendor contacts' AssociatedContactType) comes back as the map's constant.
    assert {p: v for p, v in back.key.items() if p in original} == {
        p: original[p] for p in table_map.fo_key if p in original
    }
