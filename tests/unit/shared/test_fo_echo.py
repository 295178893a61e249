"""The F&O write digest: what it covers, when a row is the state dualbus's write left (shared.fo_echo)."""

from __future__ import annotations

from dualbus.d365 import FO_VERSION_FIELD, FO_WRITE_DIGEST_FIELD
from dualbus.shared.fo_echo import NO_DIGEST, echo_fields, is_echo, write_digest
from dualbus.shared.maps import load_maps

MAPS = load_maps()
CUSTOMERS = MAPS["customers"]


def full_row(**overrides: object) -> dict[str, object]:
    """A customers row holding every field the digest covers, and its key."""
    row: dict[str, object] = {name: f"value of {name}" for name in echo_fields(CUSTOMERS)}
    row.update(dataAreaId="usmf", CustomerAccount="C-1", CreditLimit=1500.0, PartyType="Organization")
    row.update(overrides)
    return row


def written(row: dict[str, object], mark: int) -> dict[str, object]:
    """``row`` as the F&O sink leaves it: its mark and the digest of its state."""
    return {**row, FO_VERSION_FIELD: mark, FO_WRITE_DIGEST_FIELD: write_digest(CUSTOMERS, row, mark)}


def test_the_digest_covers_what_goes_to_dataverse_without_the_key_or_the_marks():
    fields = echo_fields(CUSTOMERS)
    assert {"OrganizationName", "CreditLimit", "CustomerGroupId", "PartyType"} <= set(fields)
    assert not {"dataAreaId", "CustomerAccount", FO_VERSION_FIELD, FO_WRITE_DIGEST_FIELD} & set(fields)
    # A map that never reads F&O has nothing to digest.
    assert all(echo_fields(m) == () for m in MAPS if not m.carries("dataverse"))


def test_a_row_lacking_a_covered_field_has_no_digest():
    row = full_row()
    del row["PrimaryContactEmail"]
    assert write_digest(CUSTOMERS, row, 5) == NO_DIGEST


def test_a_row_lacking_its_key_has_no_digest():
    row = full_row()
    del row["dataAreaId"]
    assert write_digest(CUSTOMERS, row, 5) == NO_DIGEST


def test_the_digest_depends_on_key_values_mark_and_map_but_not_on_case_in_the_key_or_number_forms():
    row = full_row()
    digest = write_digest(CUSTOMERS, row, 5)
    assert len(digest) == 64
    assert write_digest(CUSTOMERS, full_row(CreditLimit=1500), 5) == digest  # 1500 and 1500.0 are equal
    # F&O answers dataAreaId in lower case and compares keys without case.
    assert write_digest(CUSTOMERS, full_row(dataAreaId="USMF", CustomerAccount="c-1"), 5) == digest
    # The same values under another key: a copy into another company, a renamed account.
    assert write_digest(CUSTOMERS, full_row(dataAreaId="demf"), 5) != digest
    assert write_digest(CUSTOMERS, full_row(CustomerAccount="C-2"), 5) != digest
    assert write_digest(CUSTOMERS, full_row(CreditLimit=1500.5), 5) != digest
    assert write_digest(CUSTOMERS, row, 6) != digest
    other = CUSTOMERS.model_copy(update={"name": "customers_elsewhere"})
    assert write_digest(other, row, 5) != digest


def test_the_state_dualbus_wrote_is_an_echo_until_the_producer_has_recorded_its_mark():
    row = written(full_row(), 5)
    assert is_echo(CUSTOMERS, row, 5, 3)  # dualbus wrote since the last publish
    # The mark has not moved since the producer published the row: a user restored these values.
    assert not is_echo(CUSTOMERS, row, 5, 5)
    # The producer holds no state of the row (never published; deleted, or left the map, since): a row
    # dualbus created, or one copied, restored or back in the map with its marks, is published.
    assert not is_echo(CUSTOMERS, row, 5, None)


def test_an_edit_after_the_write_or_a_row_without_a_digest_is_no_echo():
    row = written(full_row(), 5)
    assert not is_echo(CUSTOMERS, {**row, "OrganizationName": "Edited"}, 5, 3)
    assert not is_echo(CUSTOMERS, {**row, FO_WRITE_DIGEST_FIELD: NO_DIGEST}, 5, 3)
    assert not is_echo(CUSTOMERS, {**row, FO_WRITE_DIGEST_FIELD: None}, 5, 3)
    # Read with another mark than the one the digest was written with (a repair rewrote only the mark).
    assert not is_echo(CUSTOMERS, {**row, FO_VERSION_FIELD: 6}, 6, 3)
    assert not is_echo(CUSTOMERS, written(full_row(), 0), 0, None)
