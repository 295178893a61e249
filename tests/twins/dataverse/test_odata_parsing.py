"""The twin reads OData filters, literals and key segments as the Web API does.

Filter syntax: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows
Alternate keys: https://learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record
"""

from __future__ import annotations

import pytest

from dualbus.sandbox.dataverse.errors import DataverseApiError
from dualbus.sandbox.dataverse.odata import parse_entity_path, parse_literal, relative_path
from dualbus.sandbox.dataverse.query import filter_names, parse_filter

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
    ref = parse_entity_path(f"/api/data/v9.2/accounts(_msdyn_company_value={_GUID},accountnumber='A,B')")
    assert ref.entity_set == "accounts"
    assert ref.key_values == {"_msdyn_company_value": _GUID.lower(), "accountnumber": "A,B"}


def test_key_segment_keeps_names_as_written_and_reads_a_bare_guid_as_the_id() -> None:
    """Key names are kept as written (the table decides what they mean); a bare GUID is the primary id."""
    assert parse_entity_path(f"accounts(_msdyn_company_value={_GUID},accountnumber='1')").key_values == {
        "_msdyn_company_value": _GUID.lower(),
        "accountnumber": "1",
    }
    assert parse_entity_path(f"https://org.example/api/data/v9.2/accounts({_GUID})").row_id == _GUID.lower()


@pytest.mark.parametrize("text", ["name eq", "name eq 'x' and", "(name eq 'x'", "name like 'x'"])
def test_malformed_filters_are_refused(text: str) -> None:
    """Incomplete or unsupported filter expressions raise a 400 error."""
    with pytest.raises(DataverseApiError) as refused:
        parse_filter(text)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://org.crm.dynamics.com/api/data/v9.2/WhoAmI",
        "http://127.0.0.1:8080/api/data/v9.2/WhoAmI",
        "/api/data/v9.2/WhoAmI",
        "WhoAmI",
    ],
)
def test_absolute_api_and_relative_urls_name_the_same_resource(url: str) -> None:
    """An absolute URL, the API path and the relative path all read as the same resource below the root."""
    assert relative_path(url) == "WhoAmI"


def test_filter_names_are_the_properties_it_reads() -> None:
    """filter_names lists the properties of a $filter, not its operators, functions or literals."""
    text = "(name eq 'x' and not creditlimit gt 5) or startswith(accountnumber,'A') or _x_value eq null"
    assert filter_names(text) == {"name", "creditlimit", "accountnumber", "_x_value"}
