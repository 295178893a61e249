"""The OData URL subset the twin parses: keys, $filter expressions, $orderby and their errors.

https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dualbus.sandbox.fo.errors import BadRequestError
from dualbus.sandbox.fo.query import Predicate, parse_filter, parse_key, parse_orderby, sort_rows

KEYS = ("dataAreaId", "CustomerAccount")


def _predicate(text: str) -> Predicate:
    predicate = parse_filter(text)
    assert predicate is not None
    return predicate


def test_keys_in_any_order_and_with_escaped_quotes() -> None:
    """Named key parts may come in any order; '' inside a literal is one quote; a single key may be bare."""
    assert parse_key("CustomerAccount='O''Hara',dataAreaId='usmf'", KEYS) == ("usmf", "O'Hara")
    assert parse_key("'EUR'", ("CurrencyCode",)) == ("EUR",)


@pytest.mark.parametrize(
    "text", ["dataAreaId='usmf'", "dataAreaId='usmf',Other='x',CustomerAccount='a'", "dataAreaId 'usmf'"]
)
def test_malformed_keys_are_refused(text: str) -> None:
    """A key that misses a field, names a non-key field or lacks '=' is a bad request."""
    with pytest.raises(BadRequestError):
        parse_key(text, KEYS)


def test_datetime_null_and_not() -> None:
    """Date-times compare as instants, null matches a missing value, not negates."""
    row = {"ModifiedDateTime": "2026-01-02T03:04:05.000006Z", "Note": None}
    assert _predicate("ModifiedDateTime gt 2026-01-02T03:04:05Z")(row)
    assert not _predicate("ModifiedDateTime lt 2026-01-02T03:04:05Z")(row)
    assert _predicate("Note eq null and not (Note ne null)")(row)


@pytest.mark.parametrize("text", ["Name eq", "Name like 'x'", "(Name eq 'x'", "Name eq 'x' Other", "eq 'x'"])
def test_malformed_filters_are_refused(text: str) -> None:
    """Incomplete or unsupported $filter expressions are bad requests, not silent matches."""
    with pytest.raises(BadRequestError):
        parse_filter(text)


def test_orderby_several_fields() -> None:
    """$orderby sorts by several fields, each ascending or descending, case-insensitively."""
    rows = [{"a": "x", "b": 1}, {"a": "X", "b": 2}, {"a": "w", "b": 3}]
    assert [r["b"] for r in sort_rows(rows, parse_orderby("a asc,b desc"))] == [3, 2, 1]
    with pytest.raises(BadRequestError):
        parse_orderby("a sideways")


@given(
    values=st.lists(st.integers(-5, 5), min_size=3, max_size=3),
    ops=st.lists(st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]), min_size=3, max_size=3),
    joins=st.lists(st.sampled_from(["and", "or"]), min_size=2, max_size=2),
    row=st.fixed_dictionaries({"A": st.integers(-5, 5), "B": st.integers(-5, 5), "C": st.integers(-5, 5)}),
)
def test_filter_agrees_with_python(
    values: list[int], ops: list[str], joins: list[str], row: dict[str, int]
) -> None:
    """Any and/or chain of integer comparisons gives the result Python's own operators give."""
    python_ops = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    parts = [f"{f} {op} {v}" for f, op, v in zip("ABC", ops, values, strict=True)]
    odata = f"{parts[0]} {joins[0]} {parts[1]} {joins[1]} {parts[2]}"
    python = " ".join(
        [f"row['{f}'] {python_ops[op]} {v}" for f, op, v in zip("ABC", ops, values, strict=True)][i // 2]
        if i % 2 == 0
        else joins[i // 2]
        for i in range(5)
    )
    assert _predicate(odata)(row) == eval(python, {}, {"row": row})  # noqa: S307 - a test oracle over generated text
