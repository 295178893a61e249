"""Which F&O filters name rows by their whole key, so that the twin seeks them instead of scanning."""

from __future__ import annotations

import pytest

from dualbus.sandbox.fo.entities import ENTITIES
from dualbus.sandbox.fo.key_filters import key_groups

CUSTOMERS = ENTITIES["CustomersV3"]
C1 = "(dataAreaId eq 'usmf' and CustomerAccount eq 'C-1')"


def test_one_group_or_groups_joined_by_or_give_their_keys_in_key_field_order() -> None:
    one = "CustomerAccount eq 'C-1' and dataAreaId eq 'usmf'"
    assert key_groups(CUSTOMERS, one) == [("usmf", "C-1")]
    two = f"{C1} or (dataAreaId eq 'demf' and CustomerAccount eq 'C-2')"
    assert key_groups(CUSTOMERS, two) == [("usmf", "C-1"), ("demf", "C-2")]


@pytest.mark.parametrize(
    "text",
    [
        None,
        "dataAreaId eq 'usmf'",  # not every key field
        f"{C1} and (dataAreaId eq 'demf' and CustomerAccount eq 'C-2')",
        f"{C1} or",
        f"{C1} or (dataAreaId eq 'demf')",
        "(dataAreaId eq 'usmf' and CustomerAccount ne 'C-1')",
        f"({C1})",
        f"{C1} or CreditLimit eq 5",
        "dataAreaId eq 'usmf' and CustomerAccount eq 'C-1' and",
    ],
)
def test_any_other_filter_is_left_to_the_scan(text: str | None) -> None:
    assert key_groups(CUSTOMERS, text) is None
