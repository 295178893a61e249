"""A keyset page reads the rows after its bound one by one, only as far as it needs them."""

from __future__ import annotations

from dualbus.sandbox.fo.store import FoStore

WHO = {"modified_by": "test"}


def _customer(company: str, account: str) -> dict[str, str]:
    return {"dataAreaId": company, "CustomerAccount": account, "OrganizationName": account}


def test_rows_after_a_bound_are_read_as_asked_for() -> None:
    store = FoStore()
    store.insert("CustomerGroups", {"dataAreaId": "usmf", "CustomerGroupId": "10"}, **WHO)
    for account in ("A1", "A2", "A3", "A4"):
        store.insert("CustomersV3", _customer("usmf", account), **WHO)
    reading = store.iter_row_views_after("CustomersV3", ("usmf", "a1"))
    assert next(reading)["CustomerAccount"] == "A2"
    # Read lazily: a row deleted after the read began is passed over (a list taken at the start held it).
    store.delete("CustomersV3", ("usmf", "A3"), **WHO)
    assert [row["CustomerAccount"] for row in reading] == ["A4"]
    assert [r["CustomerAccount"] for r in store.iter_row_views_after("CustomersV3", ())] == ["A1", "A2", "A4"]
