"""A replay's edits are checked against the maps before anything is sent."""

from __future__ import annotations

import pytest

from dualbus.ops.edits import EditError, body_changes, check_edits, check_message_edits, editable_fields


def test_an_edit_must_name_the_data() -> None:
    """A field without ``data.`` is refused with the spelling that works."""
    with pytest.raises(EditError, match=r"write data\.SalesCurrencyCode=VALUE"):
        check_edits({"SalesCurrencyCode": "USD"}, ["customer"], ["to-dataverse"])


def test_an_unknown_field_is_refused_naming_the_fields() -> None:
    """``data.NoSuchField`` names the entities of the chosen routes and their fields."""
    with pytest.raises(EditError, match="NoSuchField") as raised:
        check_edits({"data.NoSuchField": 1}, ["customer"], ["to-dataverse"])
    assert "customer/CustomersV3" in str(raised.value)
    assert "SalesCurrencyCode" in str(raised.value)


def test_fields_follow_the_direction() -> None:
    """What goes to Dataverse carries F&O's names; what goes to F&O, Dataverse's."""
    to_dataverse = editable_fields(["customer"], ["to-dataverse"])
    to_fo = editable_fields(["customer"], ["to-fo"])
    assert "SalesCurrencyCode" in to_dataverse["customer/CustomersV3"]
    assert all(name.startswith("customer/") for name in to_fo)
    assert "customer/CustomersV3" not in to_fo
    check_edits({"data.SalesCurrencyCode": "USD"}, ["customer"], ["to-dataverse"])  # accepted


def test_a_message_whose_entity_lacks_the_field_is_refused() -> None:
    """A field another map of the area carries still fails a message of an entity without it."""
    envelope = {"origin": "fo", "area": "customer", "entity": "CustomerGroups"}
    with pytest.raises(EditError, match="CustomerGroups does not carry 'SalesCurrencyCode'"):
        check_message_edits(envelope, {"data.SalesCurrencyCode": "USD"})


def test_the_dry_run_shows_before_and_after() -> None:
    """Each changed field reads ``path: before → after``; a field one side lacks reads as absent."""
    before = {"origin": "fo", "data": {"SalesCurrencyCode": "ZZZ", "Name": "x", "Gone": 1}}
    after = {"origin": "fo", "data": {"SalesCurrencyCode": "USD", "Name": "x", "CreditLimit": 10}}
    assert [change.describe() for change in body_changes(before, after)] == [
        "data.CreditLimit: (absent) → 10",
        "data.Gone: 1 → (absent)",
        "data.SalesCurrencyCode: 'ZZZ' → 'USD'",
    ]
