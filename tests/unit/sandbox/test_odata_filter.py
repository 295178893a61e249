"""The one $filter parser both twins use, and the two dialects' real differences.

F&O: enum literals, no string functions. Dataverse: contains/startswith/endswith, no enum literals.
Sources are recorded beside FO_FILTER (sandbox/fo/query.py) and DATAVERSE_FILTER (sandbox/dataverse/query.py).
"""

from __future__ import annotations

import pytest

from dualbus.sandbox.dataverse.errors import DataverseApiError
from dualbus.sandbox.dataverse.query import DATAVERSE_FILTER
from dualbus.sandbox.fo.errors import BadRequestError
from dualbus.sandbox.fo.query import FO_FILTER
from dualbus.sandbox.odata_filter import FilterDialect, filter_names, parse_filter

BOTH = pytest.mark.parametrize("dialect", [FO_FILTER, DATAVERSE_FILTER], ids=["fo", "dataverse"])


@BOTH
def test_the_core_reads_alike_in_both(dialect: FilterDialect) -> None:
    """Precedence, case-insensitive strings, GUIDs, instants and SQL nulls are the same in both twins."""
    predicate = parse_filter("A eq 1 or B eq 'X' and not (C gt 2024-01-01T00:00:00Z)", dialect)
    assert predicate({"A": 0, "B": "x", "C": "2023-12-31T23:59:59Z"})
    assert not predicate({"A": 0, "B": "x", "C": "2024-01-01T00:00:01Z"})
    assert parse_filter("Id eq 6F9619FF-8B86-D011-B42D-00C04FC964FF", dialect)(
        {"Id": "6f9619ff-8b86-d011-b42d-00c04fc964ff"}
    )
    assert not parse_filter("Limit gt 5", dialect)({"Limit": None})
    assert parse_filter("Limit eq null", dialect)({})
    assert filter_names("(a eq 'x' and not b gt 5) or c eq null", dialect) == {"a", "b", "c"}


def test_fo_reads_enum_literals_and_refuses_string_functions() -> None:
    """An F&O enum literal compares as its member's name; startswith is a 400 in F&O."""
    predicate = parse_filter("Blocked eq Microsoft.Dynamics.DataEntities.NoYes'Yes'", FO_FILTER)
    assert predicate({"Blocked": "Yes"})
    with pytest.raises(BadRequestError):
        parse_filter("startswith(Name,'A')", FO_FILTER)


def test_dataverse_takes_string_functions_and_refuses_enum_literals() -> None:
    """Dataverse's string functions ignore case; an enum literal is refused in its error shape."""
    assert parse_filter("contains(name,'LTD')", DATAVERSE_FILTER)({"name": "C Ltd"})
    assert parse_filter("endswith(name,'d')", DATAVERSE_FILTER)({"name": "C Ltd"})
    with pytest.raises(DataverseApiError) as refused:
        parse_filter("statecode eq Microsoft.Dynamics.CRM.State'Active'", DATAVERSE_FILTER)
    assert refused.value.status == 400
