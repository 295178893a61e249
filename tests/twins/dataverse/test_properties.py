"""A table's properties are worked out once, and each table keeps its own."""

from __future__ import annotations

from dualbus.sandbox.dataverse.tables import TABLES, properties, stored_column


def test_each_table_has_its_own_properties_worked_out_once() -> None:
    accounts, currencies = TABLES["accounts"], TABLES["transactioncurrencies"]
    assert properties(accounts) is properties(accounts)
    assert "_msdyn_company_value" in properties(accounts)
    assert "_msdyn_company_value" not in properties(currencies)
    changed = accounts.model_copy(
        update={"columns": {k: v for k, v in accounts.columns.items() if k != "name"}}
    )
    assert "name" in properties(accounts)
    assert "name" not in properties(changed)
    assert properties(changed) == {stored_column(changed, c) for c in changed.columns} | (
        properties(accounts) - {stored_column(accounts, c) for c in accounts.columns}
    )
