"""The schema files of F&O and Dataverse: consistent, sourced, and strict about values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dualbus.d365 import DvColumn, DvTable, FoEntity, SchemaFileError, dataverse_tables, fo_entities
from dualbus.d365._load import _load

ROOT = Path(__file__).resolve().parents[3] / "d365"
ENTITIES, TABLES = fo_entities(), dataverse_tables()


def test_every_file_is_loaded_and_named_after_its_entity_set() -> None:
    """Each file in fo/ and dataverse/ loads, and its name is its entity set's."""
    assert {p.stem for p in (ROOT / "fo").glob("*.json")} == set(ENTITIES)
    assert {p.stem for p in (ROOT / "dataverse").glob("*.json")} == set(TABLES)


def test_every_entry_names_a_public_source() -> None:
    """Every file lists https sources, and every field, column and key names one of them or the default."""
    for schema in [*ENTITIES.values(), *TABLES.values()]:
        assert all(url.startswith("https://") for url in schema.sources.values())
        entries = (
            list(schema.fields.values()) if isinstance(schema, FoEntity) else list(schema.columns.values())
        )
        for entry in entries:
            assert (entry.source or schema.source) in schema.sources


def test_unconfirmed_entries_say_why() -> None:
    """A column or key that no public source confirms carries the reason it is kept."""
    unconfirmed = [
        c for t in TABLES.values() for c in [*t.columns.values(), *t.alternate_keys] if not c.confirmed
    ]
    assert unconfirmed
    assert all(len(entry.why) > 20 for entry in unconfirmed)


def test_relations_and_lookups_point_at_known_entities_and_tables() -> None:
    """Relations name F&O entity sets and lookups name Dataverse tables that have files here."""
    for entity in ENTITIES.values():
        assert all(r.entity_set in ENTITIES for r in entity.relations)
    for table in TABLES.values():
        for column in table.columns.values():
            assert all(target in TABLES for target in column.targets.values())


def test_fo_values_are_checked_against_edm_types_and_enums() -> None:
    """F&O refuses unknown properties, enum members it lacks, out-of-range integers and wrong types."""
    customers = ENTITIES["CustomersV3"]
    assert customers.problem("OnHoldStatus", "Invoice") is None
    assert "not a member of enum CustVendorBlocked" in (customers.problem("OnHoldStatus", "Maybe") or "")
    assert "does not exist on type 'Microsoft.Dynamics.DataEntities.CustomerV3'" in (
        customers.problem("Nope", 1) or ""
    )
    assert customers.problem("CreditLimit", 12.5) is None
    assert customers.problem("CreditLimit", "12.5") is not None
    assert customers.problem("CreditLimit", True) is not None
    terms = ENTITIES["PaymentTerms"]
    assert terms.problem("NumberOfDays", 2**31) is not None
    assert terms.problem("NumberOfDays", None) is not None  # Nullable="false"
    assert customers.event_entity_name == "mserp_custcustomerv3entity"


def test_dataverse_values_are_checked_against_the_reference() -> None:
    """Dataverse refuses unknown columns, options it lacks, out-of-range money and over-long text."""
    accounts = TABLES["accounts"]
    assert accounts.problem("name", "x" * 160) is None
    assert accounts.problem("name", "x" * 161) == ("length", "name", "160")
    assert accounts.problem("msdyn_onholdstatus", 806380001) is None
    kinds = [
        getattr(accounts.problem(column, value), "kind", None)
        for column, value in (
            ("msdyn_onholdstatus", 192350001),
            ("creditlimit", 1e20),
            ("creditlimit", "100"),
            ("no_such_column", 1),
        )
    ]
    assert kinds == ["option", "range", "type", "unknown"]
    assert accounts.navigation("msdyn_company") == ("msdyn_company", "cdm_companies")
    assert accounts.key_named_by(frozenset({"msdyn_company", "accountnumber"})) is not None


def test_a_malformed_schema_file_is_refused() -> None:
    """A key field missing from the fields, a lookup without targets, an unexplained unconfirmed column."""
    entity = json.loads((ROOT / "fo" / "Currencies.json").read_text(encoding="utf-8"))
    entity["keys"] = ["CurrencyId"]
    with pytest.raises(ValueError, match="key field"):
        FoEntity.model_validate(entity)
    with pytest.raises(ValueError, match="targets"):
        DvColumn.model_validate({"type": "Lookup"})
    table = json.loads((ROOT / "dataverse" / "accounts.json").read_text(encoding="utf-8"))
    table["columns"]["name"]["confirmed"] = False
    with pytest.raises(ValueError, match="why"):
        DvTable.model_validate(table)


def test_a_file_named_after_another_entity_set_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader refuses a file whose name is not its entity set's."""
    folder = tmp_path / "fo"
    folder.mkdir()
    (folder / "Wrong.json").write_text((ROOT / "fo" / "Currencies.json").read_text(encoding="utf-8"))
    monkeypatch.setattr("dualbus.d365._load.files", lambda _: tmp_path)
    with pytest.raises(SchemaFileError, match=r"must be named Currencies\.json"):
        _load("fo", FoEntity)


def test_docs_list_every_unconfirmed_name() -> None:
    """docs/entities.md lists each column and key that no public source fully confirms."""
    text = (ROOT.parent / "docs" / "entities.md").read_text(encoding="utf-8")
    for table in TABLES.values():
        for name, column in table.columns.items():
            if not column.confirmed:
                assert f"`{table.entity_set}.{name}`" in text
        for key in table.alternate_keys:
            if not key.confirmed:
                assert f"`{table.entity_set}` key ({', '.join(key.columns)})" in text
