"""The workload's data is deterministic per seed, realistic, and valid for the F&O entities it targets."""

from __future__ import annotations

from sandbox.fo import ENTITIES, FoStore
from sandbox.workload import dataverse_reference, generate, load_fo_store


def test_same_seed_same_data() -> None:
    """Two datasets from one seed are identical row for row; another seed differs."""
    first = generate(42, customers=50, vendors=10, products=10)
    again = generate(42, customers=50, vendors=10, products=10)
    other = generate(43, customers=50, vendors=10, products=10)
    assert first.rows == again.rows
    assert first.rows["CustomersV3"] != other.rows["CustomersV3"]


def test_counts_keys_and_shape() -> None:
    """The requested counts are made, keys are unique per company, contact data looks real but is inert."""
    data = generate(1, customers=300, vendors=40, products=60)
    customers = data.rows["CustomersV3"]
    assert len(customers) == 300
    assert len(data.rows["VendorsV2"]) == 40
    assert len(data.rows["ReleasedDistinctProductsV2"]) == 60
    assert len({(c["dataAreaId"], c["CustomerAccount"]) for c in customers}) == 300
    assert {c["dataAreaId"] for c in customers} >= {"usmf", "demf", "gbsi"}
    assert all(c["PrimaryContactEmail"].endswith(".example.com") for c in customers)
    assert all(c["PrimaryContactPhone"].startswith("+") for c in customers)
    assert {c["SalesCurrencyCode"] for c in customers} <= {r["CurrencyCode"] for r in data.rows["Currencies"]}


def test_every_row_passes_the_fo_column_rules() -> None:
    """Each generated row fits its F&O entity's keys, lengths and enum domains (the store accepts all)."""
    data = generate(5, customers=200, vendors=30, products=30)
    store = FoStore()
    assert load_fo_store(store, data) == data.count()
    assert set(data.rows) <= set(ENTITIES)
    assert store.count("CustomersV3") == 200


def test_dataverse_reference_shape() -> None:
    """The Dataverse reference rows use its tables' columns and bind groups to companies by code."""
    tables = dataverse_reference(generate(1, customers=1))
    assert [r["cdm_companycode"] for r in tables["cdm_companies"]][:3] == ["USMF", "DEMF", "GBSI"]
    usd = next(r for r in tables["transactioncurrencies"] if r["isocurrencycode"] == "USD")
    assert (usd["currencysymbol"], usd["exchangerate"]) == ("$", 1)
    group = tables["msdyn_customergroups"][0]
    assert group["msdyn_company@odata.bind"] == "/cdm_companies(cdm_companycode='USMF')"
