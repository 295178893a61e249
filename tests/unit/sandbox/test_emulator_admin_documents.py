"""The administration API's pieces that need no server: SQL parameters, durations, bad bodies.

Bodies as the SDK writes them are read in tests/contract/test_admin_crud.py, through the SDK itself.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from dualbus.sandbox.servicebus import admin_xml
from dualbus.sandbox.servicebus.catalog import format_duration, substitute_parameters
from dualbus.sandbox.servicebus.errors import BrokerError


def test_parameters_become_literals_outside_strings_only():
    """Strings are quoted (quotes doubled), numbers and booleans written as they are; '@x' in quotes stays."""
    text = substitute_parameters(
        "a = @s AND b = @n AND c = '@s' AND d = @flag",
        {"@s": ["string", "it's"], "@n": ["int", "3"], "@flag": ["boolean", "true"]},
    )
    assert text == "a = 'it''s' AND b = 3 AND c = '@s' AND d = TRUE"


def test_a_parameter_without_a_value_is_refused():
    """An unknown @name is a 400, not a silent NULL."""
    with pytest.raises(BrokerError) as caught:
        substitute_parameters("a = @missing", {})
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=1), "PT1M"),
        (timedelta(days=14), "P14D"),
        (timedelta(days=1, hours=2, seconds=3), "P1DT2H3S"),
        (timedelta(milliseconds=500), "PT0.5S"),
        (timedelta(0), "PT0S"),
    ],
)
def test_durations_are_written_as_azure_writes_them(value, text):
    """ISO 8601 durations, the largest units first."""
    assert format_duration(value) == text


def test_a_body_that_is_not_xml_is_a_400():
    """Garbage is refused as bad input."""
    with pytest.raises(BrokerError) as caught:
        admin_xml.parse_entity(b"not xml")
    assert caught.value.status == 400
