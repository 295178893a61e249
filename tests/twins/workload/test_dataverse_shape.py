"""The workload's Dataverse data: real columns of each table, the maps' values, documented key binds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dualbus.d365 import dataverse_tables
from dualbus.sandbox.workload import (
    SHAPES,
    company_ids,
    dataverse_master,
    dataverse_reference,
    generate,
    shape_row,
)
from dualbus.shared.maps import load_maps, passes_source_filter, to_dataverse

DATA = generate(2, customers=60, vendors=10, products=12)
TABLES = {**dataverse_reference(DATA), **dataverse_master(DATA)}
BIND = "@odata.bind"
_KEY = re.compile(r"^/(?P<set>\w+)\((?P<key>.*)\)$")
_GUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")


def _cells() -> Iterator[tuple[str, str, Any]]:
    for table, rows in TABLES.items():
        for row in rows:
            for name, value in row.items():
                yield table, name, value


def test_every_column_is_a_writable_column_of_its_table() -> None:
    """Each row uses only its table's columns, with values the table takes, and none the platform computes."""
    problems = []
    for table, name, value in _cells():
        if name.endswith(BIND):
            continue
        column = dataverse_tables()[table].columns.get(name)
        problem = dataverse_tables()[table].problem(name, value)
        if problem is not None or column is None or column.read_only:
            problems.append((table, name, value, problem))
    assert problems == []


def test_every_bind_names_a_navigation_property_and_its_target() -> None:
    """Each ``@odata.bind`` names a navigation property of the table and points at its target set."""
    for table, name, value in _cells():
        if name.endswith(BIND):
            navigation = dataverse_tables()[table].navigation(name.removesuffix(BIND))
            assert navigation is not None, (table, name)
            assert value.startswith(f"/{navigation[1]}("), (table, name, value)


def test_binds_address_an_alternate_key_in_its_documented_form() -> None:
    """A bind names a whole alternate key; a lookup inside it as ``_<column>_value=<company guid>``."""
    ids = set(company_ids(DATA.companies).values())
    for _table, name, value in _cells():
        match = _KEY.match(value) if name.endswith(BIND) else None
        if match is None or _GUID.fullmatch(match["key"]):
            continue  # by primary id: unit groups have no alternate key
        target, columns = dataverse_tables()[match["set"]], set()
        for part in match["key"].split(","):
            written, _, literal = part.partition("=")
            column = written.removeprefix("_").removesuffix("_value")
            assert target.columns[column].is_lookup == (written != column), value
            assert written == column or literal in ids, value
            columns.add(column)
        assert target.key_named_by(frozenset(columns)) is not None, value


def test_tables_load_after_the_tables_they_bind_to() -> None:
    """Reference then master tables come in an order where every bind's target is loaded first."""
    order = list(TABLES)
    for table, name, value in _cells():
        if name.endswith(BIND):
            target = value[1 : value.index("(")]
            assert order.index(target) <= order.index(table), (table, name)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_shapes_agree_with_the_table_maps(shape: str) -> None:
    """Each shape writes exactly the columns and lookups the table map of the same name makes of a row."""
    table_map, spec = load_maps()[shape], SHAPES[shape]
    ids = company_ids(DATA.companies)
    rows = [r for r in DATA.rows[spec.fo_entity] if passes_source_filter(table_map, "fo", r)]
    assert rows == [r for r in DATA.rows[spec.fo_entity] if spec.takes(r)]
    for row in rows:
        change, ours = to_dataverse(table_map, row), shape_row(spec, row, ids)
        assert {k: v for k, v in ours.items() if k in change.payload} == change.payload
        bound = {b.navigation for b in change.lookups if b.key is not None}
        assert bound == {k.removesuffix(BIND) for k in ours if k.endswith(BIND)} - _extra_binds(spec.table)


def _extra_binds(table: str) -> set[str]:
    # Required lookups no map carries (dataverse_extras.py): unit groups and a unit's base unit.
    return {"uoms": {"uomscheduleid", "baseuom"}, "products": {"defaultuomscheduleid"}}.get(table, set())
