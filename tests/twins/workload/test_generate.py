"""The workload's F&O data: deterministic per seed, realistic, and valid for the published F&O entities."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from dualbus.d365 import fo_entities
from dualbus.sandbox.fo import FoStore
from dualbus.sandbox.workload import (
    LOAD_ORDER,
    dataverse_master,
    dataverse_reference,
    generate,
    load_fo_store,
)

DATA = generate(5, customers=200, vendors=30, products=30)


def _related(entity: str, row: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each relation of ``row`` that names something: the related entity and the values it must have."""
    definition = fo_entities()[entity]
    for relation in definition.relations:
        values = {theirs: row.get(ours) for ours, theirs in relation.fields.items()}
        if any(v in (None, "") for v in values.values()):
            continue
        if definition.company_specific and fo_entities()[relation.entity_set].company_specific:
            values["dataAreaId"] = row["dataAreaId"]
        yield relation.entity_set, values


def _exists(entity: str, values: Mapping[str, Any]) -> bool:
    return any(all(row.get(k) == v for k, v in values.items()) for row in DATA.rows[entity])


def test_same_seed_same_data() -> None:
    """Two datasets from one seed are identical row for row, in both shapes; another seed differs."""
    again = generate(5, customers=200, vendors=30, products=30)
    other = generate(6, customers=200, vendors=30, products=30)
    assert again.rows == DATA.rows
    assert dataverse_reference(again) == dataverse_reference(DATA)
    assert dataverse_master(again) == dataverse_master(DATA)
    assert other.rows["CustomersV3"] != DATA.rows["CustomersV3"]


def test_counts_keys_and_mix() -> None:
    """Requested counts are made, keys are unique, customers are organisations and persons in each company."""
    customers = DATA.rows["CustomersV3"]
    assert (len(customers), len(DATA.rows["VendorsV2"]), len(DATA.rows["ReleasedProductsV2"])) == (
        200,
        30,
        30,
    )
    for entity, rows in DATA.rows.items():
        keys = fo_entities()[entity].keys
        assert len({tuple(str(r[k]).casefold() for k in keys) for r in rows}) == len(rows), entity
    mix = Counter(c["PartyType"] for c in customers)
    assert set(mix) == {"Organization", "Person"}
    assert 0.1 < mix["Person"] / len(customers) < 0.3
    assert {c["dataAreaId"] for c in customers} == {c.id.lower() for c in DATA.companies}
    assert len(DATA.rows["CDSContactPersonsV2"]) >= len(DATA.rows["VendorsV2"])


def test_contact_data_looks_real_but_is_inert() -> None:
    """Phones carry a country code, e-mail addresses are on reserved example domains and fit Dataverse."""
    people = [*DATA.rows["CustomersV3"], *DATA.rows["CDSContactPersonsV2"]]
    emails = [r.get("PrimaryContactEmail") or r["PrimaryEmailAddress"] for r in people]
    assert all(e.endswith(".example.com") and len(e) <= 100 for e in emails)
    assert all(r["PrimaryContactPhone"].startswith("+") for r in DATA.rows["CustomersV3"])


def test_every_field_passes_the_fo_schema() -> None:
    """Every field of every row is one of its entity's fields with a value F&O's schema accepts."""
    problems = [
        (entity, name, problem)
        for entity, rows in DATA.rows.items()
        for row in rows
        for name, value in row.items()
        if (problem := fo_entities()[entity].problem(name, value)) is not None
    ]
    assert problems == []


def test_relations_resolve_within_the_dataset() -> None:
    """Every relation F&O checks on write names an existing row, in the same company where both have one."""
    dangling = [
        (entity, target, values)
        for entity, rows in DATA.rows.items()
        for row in rows
        for target, values in _related(entity, row)
        if not _exists(target, values)
    ]
    assert dangling == []


def test_unchecked_references_resolve_too() -> None:
    """References F&O does not declare point at real rows: vendors of contacts, parties of hierarchies."""
    for contact in DATA.rows["CDSContactPersonsV2"]:
        assert _exists(
            "VendorsV2",
            {"dataAreaId": contact["dataAreaId"], "VendorAccountNumber": contact["AssociatedContactNumber"]},
        )
    parties = {r["PartyNumber"] for r in (*DATA.rows["LegalEntities"], *DATA.rows["OperatingUnits"])}
    for link in DATA.rows["OrganizationHierarchyPublished"]:
        assert {
            link["ChildOrganizationPartyNumber"],
            link.get("ParentOrganizationPartyNumber", link["ChildOrganizationPartyNumber"]),
        } <= parties
    released = {(r["dataAreaId"], r["ItemNumber"]) for r in DATA.rows["ReleasedProductsV2"]}
    assert released == {(r["dataAreaId"], r["ItemNumber"]) for r in DATA.rows["CDSReleasedDistinctProducts"]}


def test_load_order_puts_related_entities_first() -> None:
    """Each entity comes after every entity its relations point at, so creating in order never dangles."""
    assert list(DATA.rows) == list(LOAD_ORDER)
    for position, entity in enumerate(LOAD_ORDER):
        for relation in fo_entities()[entity].relations:
            assert relation.entity_set == entity or LOAD_ORDER.index(relation.entity_set) < position


def test_the_fo_store_accepts_every_row() -> None:
    """The F&O twin's store, which checks fields, types, enums and relations, takes the whole dataset."""
    store = FoStore()
    assert load_fo_store(store, DATA) == DATA.count()
    assert store.count("CustomersV3") == 200
