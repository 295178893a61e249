"""Every map is checked against the published schemas of both systems: no name that F&O or Dataverse lacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dualbus.d365 import dataverse_tables, fo_entities
from dualbus.shared.errors import MapDefinitionError
from dualbus.shared.maps import load_map_file, load_maps
from dualbus.shared.maps._schemas import schema_problems

DATA = Path(__file__).resolve().parents[3] / "shared" / "maps" / "data"
ENTITIES, TABLES = fo_entities(), dataverse_tables()


def problems_of(folder: Path, name: str, change: Any) -> list[str]:
    """The schema problems of a shipped map after ``change`` edited its JSON."""
    raw: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    change(raw)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return schema_problems(load_map_file(path), ENTITIES, TABLES)


def test_every_shipped_map_names_only_what_the_schemas_have() -> None:
    """The shipped maps have no unknown entity, field, column, key, lookup or value: 0 problems."""
    for path in sorted(DATA.glob("*.json")):
        table_map = load_map_file(path)
        assert schema_problems(table_map, ENTITIES, TABLES) == [], path.name
    assert len(load_maps()) == len(list(DATA.glob("*.json")))


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        ("customers", lambda m: m.update(fo_entity="CustomersV9"), "F&O has no entity set 'CustomersV9'"),
        ("customers", lambda m: m.update(dataverse_table="account"), "Dataverse has no table 'account'"),
        (
            "customers",
            lambda m: m["fields"][1].update(fo="CustomerName"),
            "CustomersV3 has no field 'CustomerName'",
        ),
        (
            "vendors",
            lambda m: m["fields"][1].update(dataverse="msdyn_vendorname"),
            "no column 'msdyn_vendorname'",
        ),
        (
            "customers",
            lambda m: m["fields"][3]["value_map"][0].update(dataverse=192350000),
            "192350000 is not one of",
        ),
        (
            "customers",
            lambda m: m["fields"][3]["value_map"][0].update(fo="Nope"),
            "'Nope' is not a member of enum",
        ),
        (
            "customers",
            lambda m: m["lookups"][1].update(dataverse="msdyn_group"),
            "no lookup navigation property",
        ),
        (
            "customers",
            lambda m: m.update(dataverse_key=["accountnumber"]),
            "no alternate key ['accountnumber']",
        ),
        ("customers", lambda m: m.update(fo_key=["CustomerAccount"]), "CustomersV3's key is"),
        (
            "products",
            lambda m: m["fields"][0].update(compose=["dataAreaId", "ProductNo"]),
            "no field 'ProductNo'",
        ),
        ("customers", lambda m: m["fields"][2].update(type="boolean"), "which a boolean field cannot carry"),
        (
            "customers",
            lambda m: m["source_filter"]["dataverse"][0].update(field="relationshiptype"),
            "accounts has no column 'relationshiptype'",
        ),
    ],
    ids=[
        "entity",
        "table",
        "field",
        "column",
        "option",
        "member",
        "lookup",
        "dv-key",
        "fo-key",
        "compose",
        "type",
        "filter",
    ],
)
def test_a_name_the_schemas_lack_is_a_problem(tmp_path: Path, name: str, change: Any, expected: str) -> None:
    """Each kind of unknown name or misfit value is reported with its JSON path."""
    problems = problems_of(tmp_path, name, change)
    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith("$.") for problem in problems)


def test_load_maps_refuses_a_map_with_an_unknown_name(tmp_path: Path) -> None:
    """load_maps fails at start, naming the file and the map, when a map uses a name F&O does not have."""
    for path in DATA.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    raw = json.loads((tmp_path / "currency.json").read_text(encoding="utf-8"))
    raw["fields"][2]["fo"] = "RoundingPrecision"
    (tmp_path / "currency.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(
        MapDefinitionError, match=r"currency.json \(map 'currency'\): \$.fields\[2\].fo: .*RoundingPrecision"
    ):
        load_maps(tmp_path)


def test_dataverse_string_limits_come_from_the_schema() -> None:
    """A map need not state Dataverse's column lengths: they are taken from the table reference."""
    customers = load_maps()["customers"]
    name = customers.field_named("dataverse", "name")
    assert name is not None
    assert name.dataverse_max_length == TABLES["accounts"].columns["name"].max_length == 160
