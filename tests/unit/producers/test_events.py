"""Envelopes built from source rows: versions, keys, full state, echo filtering and data events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from producers.errors import SourceError
from producers.events import EchoFilter, build_envelope, fo_version, parse_time
from producers.fo_events import parse_data_event
from producers.fo_reader import key_path
from producers.tables import source_tables
from sandbox.fo.events import data_event_payload
from sandbox.fo.store import Change
from shared.envelope import Operation, Origin
from shared.maps import load_maps


def _customers():
    return next(t for t in source_tables(load_maps(), Origin.FO) if t.name == "CustomersV3")


ROW = {
    "dataAreaId": "usmf",
    "CustomerAccount": "C-1",
    "OrganizationName": "Fabrikam",
    "PartyType": "Organization",
    "CustomerGroupId": "10",
    "SalesCurrencyCode": "USD",
    "ModifiedDateTime": "2026-01-02T03:04:05.000006Z",
    "ModifiedBy": "someone",
    "Unmapped": "left out",
}


def test_fo_version_is_microseconds_since_epoch() -> None:
    """The F&O version mark is the modified time in whole microseconds, and later times are larger."""
    assert fo_version("1970-01-01T00:00:01.000002Z") == 1_000_002
    assert fo_version("2026-01-02T03:04:05.000007Z") > fo_version(ROW["ModifiedDateTime"])


def test_parse_time_rejects_garbage() -> None:
    """A value that is no date-time is refused rather than guessed."""
    with pytest.raises(ValueError, match="not a date-time"):
        parse_time("yesterday")


def test_envelope_carries_full_mapped_state_in_source_names() -> None:
    """An update's data holds every carried field by its F&O name, and nothing the map does not carry."""
    table = _customers()
    envelope = build_envelope(table, ROW, Operation.UPDATE, source_version=7, time=datetime.now(UTC))
    assert envelope.key == {"dataAreaId": "usmf", "CustomerAccount": "C-1"}
    assert envelope.company == "USMF"
    assert envelope.area == "customer"
    assert envelope.data["OrganizationName"] == "Fabrikam"
    assert "Unmapped" not in envelope.data
    assert "ModifiedBy" not in envelope.data


def test_same_change_gets_same_id_and_a_later_one_another() -> None:
    """Re-building one change yields the same event id; a newer version yields a different one."""
    table = _customers()
    now = datetime.now(UTC)
    first = build_envelope(table, ROW, Operation.UPDATE, source_version=7, time=now)
    again = build_envelope(table, dict(ROW), Operation.UPDATE, source_version=7, time=now)
    later = build_envelope(table, ROW, Operation.UPDATE, source_version=8, time=now)
    assert first.id == again.id
    assert first.id != later.id


def test_delete_carries_key_and_no_data() -> None:
    """A delete names the record by key only."""
    table = _customers()
    key = {"dataAreaId": "usmf", "CustomerAccount": "C-1"}
    envelope = build_envelope(table, {}, Operation.DELETE, source_version=9, time=datetime.now(UTC), key=key)
    assert envelope.data == {}
    assert envelope.key == key


def test_echo_filter_matches_own_user_in_any_case() -> None:
    """A row last modified by dualbus's own user is an echo; another user's is not."""
    echo = EchoFilter.of("Dualbus", None, "")
    assert echo.is_echo(Origin.FO, {"ModifiedBy": "dualbus"})
    assert not echo.is_echo(Origin.FO, {"ModifiedBy": "workload"})
    assert echo.is_echo(Origin.DATAVERSE, {"_modifiedby_value": "DUALBUS"})
    assert not echo.is_echo(Origin.DATAVERSE, {})


def test_twin_data_event_parses_to_entity_operation_and_record() -> None:
    """The F&O twin's data event payload yields its entity, change type, record and initiating user."""
    change = Change(
        entity="CustomersV3",
        change_type="Update",
        keys={"dataAreaId": "usmf", "CustomerAccount": "C-1"},
        row=dict(ROW),
        changed_fields=("OrganizationName",),
        sequence=3,
        time=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        modified_by="someone",
    )
    event = parse_data_event(data_event_payload(change))
    assert event.entity == "CustomersV3"
    assert event.operation is Operation.UPDATE
    assert event.record["OrganizationName"] == "Fabrikam"
    assert "BusinessEventId" not in event.record
    assert event.initiating_user


def test_data_event_without_entity_is_refused() -> None:
    """A payload that names no entity or change type is a SourceError, not a guess."""
    with pytest.raises(SourceError):
        parse_data_event({"EventTimeIso8601": "2026-01-01T00:00:00Z"})
    with pytest.raises(SourceError):
        parse_data_event(["not", "an", "object"])


def test_key_path_quotes_string_literals() -> None:
    """An OData key path doubles quotes inside strings and leaves integers bare."""
    assert key_path("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "O'Neil"}) == (
        "CustomersV3(dataAreaId='usmf',CustomerAccount='O''Neil')"
    )
    assert key_path("Things", {"Id": 5}) == "Things(Id=5)"
