"""A Dataverse change's event time: the earliest it can have been made, never after it."""

from __future__ import annotations

from datetime import UTC, datetime

from dualbus.producers.dataverse import _change_time

SINCE = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)


def test_the_previous_read_when_modifiedon_is_earlier_else_modifiedon() -> None:
    assert _change_time("2024-05-01T12:00:00Z", SINCE) == SINCE
    assert _change_time("2024-05-01T12:00:01Z", SINCE) == datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)


def test_modifiedon_alone_when_the_table_was_not_read_before() -> None:
    assert _change_time("2024-05-01T12:00:00Z", None) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_delete_takes_the_previous_read_or_else_now() -> None:
    assert _change_time(None, SINCE) == SINCE
    before = datetime.now(UTC)
    assert before <= _change_time(None, None) <= datetime.now(UTC)
