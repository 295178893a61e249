"""The twins' reading of the ``Prefer`` header (RFC 7240), quoted values with commas included."""

from __future__ import annotations

from dualbus.sandbox.odata_prefer import parse_prefer


def test_preferences_are_split_on_commas_outside_quoted_values() -> None:
    """A quoted ``odata.include-annotations`` list keeps its commas; names lower-cased, values unquoted."""
    header = 'odata.maxpagesize=3, Odata.Include-Annotations="A.b,C.*", return=representation'
    assert parse_prefer(header) == {
        "odata.maxpagesize": "3",
        "odata.include-annotations": "A.b,C.*",
        "return": "representation",
    }


def test_parameters_are_left_out_and_a_bare_preference_reads_empty() -> None:
    """Parameters after ``;`` are dropped (a ``;`` inside quotes is part of the value)."""
    header = 'respond-async; wait=10, odata.continue-on-error, odata.include-annotations="x;y";p=1'
    assert parse_prefer(header) == {
        "respond-async": "",
        "odata.continue-on-error": "",
        "odata.include-annotations": "x;y",
    }


def test_a_quoted_value_keeps_its_escaped_quotes_and_commas() -> None:
    """A backslash-escaped quote does not end the quoted string (RFC 9110 section 5.6.4)."""
    header = r'odata.include-annotations="a\"b,c", return=minimal'
    assert parse_prefer(header) == {"odata.include-annotations": 'a"b,c', "return": "minimal"}
