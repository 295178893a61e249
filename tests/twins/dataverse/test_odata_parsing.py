"""The twin reads OData filters, literals and key segments as the Web API does.

Filter syntax: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
Alternate keys: https://learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record
"""

from __future__ import annotations

import pytest

from sandbox.dataverse.errors import DataverseApiError
from sandbox.dataverse.odata import parse_entity_path, parse_literal
from sandbox.dataverse.query import parse_filter

_GUID = "6F9619FF-8B86-D011-B42D-00C04FC964FF"


def test_and_binds_tighter_than_or() -> None:
    """'a or b and c' reads as 'a or (b and c)'."""
    predicate = parse_filter("x eq 1 or y eq 2 and z eq 3")
    assert predicate({"x": 1, "y": 0, "z": 0})
    assert not predicate({"x": 0, "y": 2, "z": 0})
    assert predicate({"x": 0, "y": 2, "z": 3})


def test_not_and_parentheses() -> None:
    """not negates the parenthesised expression after it."""
    predicate = parse_filter("not (x eq 1 or x eq 2)")
    assert predicate({"x": 3})
    assert not predicate({"x": 2})


def test_string_literal_with_escaped_quote() -> None:
    """Two single quotes inside a string literal stand for one."""
    assert parse_filter("name eq 'O''Brien'")({"name": "o'brien"})


def test_guid_literal_matches_lower_cased_lookup() -> None:
    """A GUID literal matches the stored (lower-case) lookup value whatever its case."""
    assert parse_filter(f"_msdyn_company_value eq {_GUID}")({"_msdyn_company_value": _GUID.lower()})


def test_null_is_neither_greater_nor_smaller() -> None:
    """Comparisons with null other than eq/ne are false, as in SQL."""
    assert not parse_filter("creditlimit gt 5")({"creditlimit": None})
    assert parse_filter("creditlimit ne null")({"creditlimit": 0})


def test_datetime_literal_compares_with_stored_timestamps() -> None:
    """A datetime literal compares with modifiedon as written by the twin."""
    predicate = parse_filter("modifiedon ge 2024-05-01T12:00:00Z")
    assert predicate({"modifiedon": "2024-05-01T12:30:00Z"})
    assert not predicate({"modifiedon": "2024-04-30T23:59:59Z"})


def test_literals() -> None:
    """Numbers, booleans and null read as Python values."""
    assert (parse_literal("42"), parse_literal("-1.5"), parse_literal("true"), parse_literal("null")) == (
        42,
        -1.5,
        True,
        None,
    )


def test_alternate_key_segment_with_comma_in_value() -> None:
    """A comma inside a quoted key value does not split the key."""
    ref = parse_entity_path(f"/api/data/v9.2/accounts(msdyn_company={_GUID},accountnumber='A,B')")
    assert ref.entity_set == "accounts"
    assert ref.key_values == {"msdyn_company": _GUID.lower(), "accountnumber": "A,B"}


def test_key_segment_by_lookup_value_name_and_by_id() -> None:
    """A lookup key may be written as _x_value; a bare GUID is the primary id."""
    assert parse_entity_path(f"accounts(_msdyn_company_value={_GUID},accountnumber='1')").key_values == {
        "msdyn_company": _GUID.lower(),
        "accountnumber": "1",
    }
    assert parse_entity_path(f"https://org.example/api/data/v9.2/accounts({_GUID})").row_id == _GUID.lower()


@pytest.mark.parametrize("text", ["name eq", "name eq 'x' and", "(name eq 'x'", "name like 'x'"])
def test_malformed_filters_are_refused(text: str) -> None:
    """Incomplete or unsupported filter expressions raise a 400 error."""
    with pytest.raises(DataverseApiError) as refused:
        parse_filter(text)
    assert refused.value.status == 400
