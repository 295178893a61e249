"""The twins' reading of the ``Prefer`` header (RFC 7240), quoted values with commas included."""

from __future__ import annotations

import pytest

from dualbus.sandbox.odata_prefer import parse_prefer


@pytest.mark.parametrize(
    ("header", "preferences"),
    [
        # A quoted list keeps its commas; names are lower-cased, values unquoted.
        (
            'odata.maxpagesize=3, Odata.Include-Annotations="A.b,C.*", return=representation',
            {"odata.maxpagesize": "3", "odata.include-annotations": "A.b,C.*", "return": "representation"},
        ),
        # Parameters after ";" are dropped, a ";" inside quotes is part of the value; a bare one reads "".
        (
            'respond-async; wait=10, odata.continue-on-error, odata.include-annotations="x;y";p=1',
            {"respond-async": "", "odata.continue-on-error": "", "odata.include-annotations": "x;y"},
        ),
        # A backslash-escaped quote does not end the quoted string (RFC 9110 section 5.6.4).
        (
            r'odata.include-annotations="a\"b,c", return=minimal',
            {"odata.include-annotations": 'a"b,c', "return": "minimal"},
        ),
    ],
    ids=["quoted-commas", "parameters", "escaped-quote"],
)
def test_preferences_are_read_as_sent(header: str, preferences: dict[str, str]) -> None:
    """Each preference by its lower-case name, split on commas outside quoted values."""
    assert parse_prefer(header) == preferences
