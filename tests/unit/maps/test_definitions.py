"""A malformed map file yields a MapDefinitionError naming the file and the JSON path of the problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dualbus.shared.errors import MapDefinitionError
from dualbus.shared.maps import MapSet, load_map_file, load_maps

DATA = Path(__file__).resolve().parents[3] / "shared" / "maps" / "data"


def shipped(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def write(folder: Path, name: str, content: dict[str, Any] | str) -> Path:
    path = folder / f"{name}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def error_for(tmp_path: Path, content: dict[str, Any] | str) -> str:
    with pytest.raises(MapDefinitionError) as caught:
        load_map_file(write(tmp_path, "broken", content))
    assert caught.value.__cause__ is not None  # translated at the boundary, the original kept as cause
    return str(caught.value)


def test_shipped_files_load_one_by_one() -> None:
    """Every shipped file loads on its own; load_maps returns the same map with the schemas' limits added."""
    maps = load_maps()
    for path in sorted(DATA.glob("*.json")):
        table_map = load_map_file(path)
        bound = maps[table_map.name]
        assert bound.model_copy(update={"fields": table_map.fields}) == table_map
        for mine, theirs in zip(table_map.fields, bound.fields, strict=True):
            assert theirs.dataverse_max_length in {mine.dataverse_max_length, theirs.dataverse_max_length}


def test_bad_json(tmp_path: Path) -> None:
    """Text that is not JSON is reported with the file, line and column."""
    message = error_for(tmp_path, '{"name": "x",\n  "area": }')
    assert "broken.json" in message
    assert "not valid JSON" in message
    assert "line 2" in message


def test_duplicate_json_key(tmp_path: Path) -> None:
    """A key written twice in one object is an error rather than a silent overwrite."""
    message = error_for(tmp_path, '{"name": "a", "name": "b"}')
    assert "'name' appears twice" in message


def test_unknown_direction(tmp_path: Path) -> None:
    """A field direction outside the three known ones is reported at its JSON path."""
    broken = shipped("customers")
    broken["fields"][2]["direction"] = "sideways"
    message = error_for(tmp_path, broken)
    assert "broken.json: $.fields[2].direction:" in message
    assert "two_way" in message


def test_value_map_not_invertible_for_two_way_field(tmp_path: Path) -> None:
    """A two-way value map where two F&O values share one option value is refused."""
    broken = shipped("customers")
    hold = next(i for i, f in enumerate(broken["fields"]) if f.get("fo") == "OnHoldStatus")
    broken["fields"][hold]["value_map"][1]["dataverse"] = 806380000
    message = error_for(tmp_path, broken)
    assert f"$.fields[{hold}].value_map[1].dataverse" in message
    assert "not invertible" in message


def test_many_to_one_value_map_is_fine_one_way(tmp_path: Path) -> None:
    """A one-way value map may send several F&O values to one Dataverse value."""
    products = shipped("products")
    kind = next(i for i, f in enumerate(products["fields"]) if f.get("fo") == "ProductType")
    products["fields"][kind]["value_map"].append({"fo": "Kit", "dataverse": 1})
    assert load_map_file(write(tmp_path, "products", products)).name == "products"


def test_lookup_to_unknown_table(tmp_path: Path) -> None:
    """A lookup whose target is not the table its navigation property points at is refused at load."""
    for name in ("company", "currency", "payment_terms", "customer_groups"):
        write(tmp_path, name, shipped(name))
    customers = shipped("customers")
    customers["lookups"][2]["target_table"] = "currencies_of_mars"
    write(tmp_path, "customers", customers)
    with pytest.raises(MapDefinitionError) as caught:
        load_maps(tmp_path)
    assert "$.lookups[2].target_table: 'transactioncurrencyid' points at transactioncurrencies" in str(
        caught.value
    )


def test_lookup_to_a_table_no_map_loads(tmp_path: Path) -> None:
    """A lookup whose target table is not the Dataverse table of any loaded map is refused."""
    for name in ("company", "payment_terms", "customer_groups", "customers"):
        write(tmp_path, name, shipped(name))
    with pytest.raises(
        MapDefinitionError, match="'transactioncurrencies' is not the Dataverse table of any map"
    ):
        load_maps(tmp_path)


def test_lookup_key_is_not_the_targets_alternate_key(tmp_path: Path) -> None:
    """A lookup must name the columns of its target's alternate key."""
    write(tmp_path, "company", shipped("company"))
    groups = shipped("customer_groups")
    groups["lookups"][0]["key"] = {"cdm_name": "dataAreaId"}
    write(tmp_path, "customer_groups", groups)
    with pytest.raises(
        MapDefinitionError, match=r"customer_groups.json \(map 'customer_groups'\): \$.lookups\[0\].key"
    ):
        load_maps(tmp_path)


def test_duplicate_map_names(tmp_path: Path) -> None:
    """Two files that declare the same map name are refused, naming both files."""
    write(tmp_path, "a", shipped("company"))
    write(tmp_path, "b", shipped("company"))
    with pytest.raises(MapDefinitionError, match=r"b.json: \$.name: .*also used by a.json"):
        load_maps(tmp_path)


def test_lookup_cycle(tmp_path: Path) -> None:
    """Two tables that look each other up form a cycle and are refused (checked apart from the schemas)."""
    company = shipped("company")
    company["lookups"] = [
        {
            "dataverse": "msdyn_defaultcurrency",
            "target_table": "transactioncurrencies",
            "key": {"isocurrencycode": "CurrencyCode"},
            "direction": "fo_to_dataverse",
        }
    ]
    currency = shipped("currency")
    currency["lookups"] = [copy.deepcopy(shipped("customer_groups")["lookups"][0])]
    maps = [
        load_map_file(write(tmp_path, name, m)) for name, m in (("company", company), ("currency", currency))
    ]
    with pytest.raises(MapDefinitionError, match="form a cycle: cdm_companies -> transactioncurrencies"):
        MapSet(maps)


def test_field_direction_wider_than_its_map(tmp_path: Path) -> None:
    """A two-way field in a one-way map is refused."""
    products = shipped("products")
    products["fields"][1]["direction"] = "two_way"
    message = error_for(tmp_path, products)
    assert "$.fields[1].direction" in message
    assert "goes two_way in a map that goes fo_to_dataverse" in message


def test_unknown_area_and_extra_keys(tmp_path: Path) -> None:
    """An unknown area and a misspelt key are each reported at their path."""
    broken = shipped("company")
    broken["area"] = "marketing"
    broken["fields"][0]["maxlength"] = 4
    message = error_for(tmp_path, broken)
    assert "$.area:" in message
    assert "$.fields[0].maxlength: Extra inputs are not permitted" in message


def test_key_part_not_carried(tmp_path: Path) -> None:
    """A key part of the side a map writes to that no field or lookup carries is refused."""
    broken = shipped("company")
    broken["dataverse_key"] = ["cdm_code"]
    message = error_for(tmp_path, broken)
    assert "$.dataverse_key[0]" in message
    assert "'cdm_code' is not carried" in message


def test_constant_must_go_one_way_to_its_side(tmp_path: Path) -> None:
    """A constant written to Dataverse cannot be two-way."""
    broken = shipped("currency")
    broken["fields"][-1]["direction"] = "two_way"
    message = error_for(tmp_path, broken)
    assert f"$.fields[{len(broken['fields']) - 1}].direction" in message


def test_type_or_value_map(tmp_path: Path) -> None:
    """A field needs a type or a value map, not both and not neither."""
    broken = shipped("company")
    del broken["fields"][1]["type"]
    assert "give exactly one of 'type' and 'value_map'" in error_for(tmp_path, broken)


def test_default_must_fit_the_value_map(tmp_path: Path) -> None:
    """A default that is not one of the value map's values is refused."""
    broken = shipped("vendors")
    hold = next(i for i, f in enumerate(broken["fields"]) if f.get("fo") == "OnHoldStatus")
    broken["fields"][hold]["fo_default"] = "Maybe"
    assert f"$.fields[{hold}].fo_default" in error_for(tmp_path, broken)


def test_filter_operator_shape(tmp_path: Path) -> None:
    """An 'in' filter needs a list of values."""
    broken = shipped("customers")
    broken["source_filter"]["fo"][0]["op"] = "in"
    assert "$.source_filter.fo[0].value" in error_for(tmp_path, broken)


def test_unreadable_file(tmp_path: Path) -> None:
    """A file that does not exist is a MapDefinitionError naming it."""
    with pytest.raises(MapDefinitionError, match=r"missing\.json"):
        load_map_file(tmp_path / "missing.json")


def test_empty_folder(tmp_path: Path) -> None:
    """A folder without map files is an error, not an empty map set."""
    with pytest.raises(MapDefinitionError, match="no map files"):
        load_maps(tmp_path)
