"""The initial-sync order comes from the maps' lookups: what a row points at is synced before it."""

from __future__ import annotations

import pytest

from dualbus.shared.errors import MapDefinitionError
from dualbus.shared.maps import (
    TableMap,
    area_dependencies,
    area_order,
    load_maps,
    map_order,
)

MAPS = load_maps()


def make_map(name: str, area: str, table: str, targets: list[str]) -> TableMap:
    """A minimal two-way map on ``table`` whose lookups point at ``targets`` (each keyed by ``code``)."""
    return TableMap.model_validate(
        {
            "name": name,
            "area": area,
            "description": name,
            "direction": "two_way",
            "fo_entity": name.title(),
            "dataverse_table": table,
            "fo_key": ["Code"],
            "dataverse_key": ["code"],
            "fields": [{"fo": "Code", "dataverse": "code", "direction": "two_way", "type": "string"}],
            "lookups": [
                {
                    "dataverse": f"to_{t}",
                    "target_table": t,
                    "key": {"code": f"Ref{t}"},
                    "direction": "two_way",
                }
                for t in targets
            ],
        }
    )


def test_shipped_area_order() -> None:
    """Company and currency come before the areas that look them up; ties go by name."""
    order = area_order(MAPS)
    assert order == ["company", "currency", "organisation", "customer", "product", "vendor"]
    assert order.index("customer") < order.index("vendor")
    for area, needs in area_dependencies(MAPS).items():
        assert all(order.index(dependency) < order.index(area) for dependency in needs)


def test_shipped_dependencies_come_from_lookups() -> None:
    """Customer and product depend on company and currency; vendor also on customer, for payment terms."""
    graph = area_dependencies(MAPS)
    assert graph["customer"] == graph["product"] == {"company", "currency"}
    assert graph["vendor"] == {"company", "currency", "customer"}
    assert graph["company"] == graph["currency"] == graph["organisation"] == frozenset()


def test_groups_sync_before_the_rows_that_use_them() -> None:
    """Inside an area, customer groups come before customers and vendor groups before vendors."""
    names = [m.name for m in map_order(MAPS)]
    assert names.index("customer_groups") < names.index("customers")
    assert names.index("vendor_groups") < names.index("vendors") < names.index("vendor_contacts")
    assert names.index("payment_terms") < names.index("customer_groups")
    assert names.index("units") < names.index("products")
    assert names.index("company") < names.index("customer_groups")


def test_order_follows_the_lookups_not_the_names() -> None:
    """An area that looks up another comes after it even when its name sorts first."""
    maps = [
        make_map("a", "company", "t_a", ["t_b"]),
        make_map("b", "vendor", "t_b", []),
        make_map("c", "currency", "t_c", ["t_a"]),
    ]
    assert area_order(maps) == ["vendor", "company", "currency"]
    assert [m.name for m in map_order(maps)] == ["b", "a", "c"]


def test_ties_are_broken_by_name_whatever_the_input_order() -> None:
    """Independent areas come out in name order, however the maps are listed."""
    maps = [make_map("x", "vendor", "t_x", []), make_map("y", "company", "t_y", [])]
    assert area_order(maps) == area_order(list(reversed(maps))) == ["company", "vendor"]


def test_area_cycle_is_refused() -> None:
    """Areas that look each other up have no initial-sync order."""
    maps = [make_map("a", "company", "t_a", ["t_b"]), make_map("b", "vendor", "t_b", ["t_a"])]
    with pytest.raises(MapDefinitionError, match="cycle"):
        area_order(maps)


def test_lookups_inside_one_area_do_not_order_areas() -> None:
    """A lookup between two tables of one area orders those maps only."""
    maps = [make_map("g", "customer", "groups", []), make_map("c", "customer", "accounts", ["groups"])]
    assert area_order(maps) == ["customer"]
    assert [m.name for m in map_order(maps)] == ["g", "c"]
