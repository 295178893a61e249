"""Envelopes from source rows: keys, full state, base versions, Dataverse's echo filter, OData literals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dualbus.d365 import fo_entities
from dualbus.ops._reconcile_repair import repair_event
from dualbus.producers.clock import VersionClock
from dualbus.producers.events import EchoFilter, build_envelope, parse_time
from dualbus.producers.fo_reader import key_filter
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Operation, Origin
from dualbus.shared.maps import load_maps


def _customers():
    return next(t for t in source_tables(load_maps(), Origin.FO) if t.table_map.name == "customers")


ROW = {
    "dataAreaId": "usmf",
    "CustomerAccount": "C-1",
    "OrganizationName": "Fabrikam",
    "PartyType": "Organization",
    "CustomerGroupId": "10",
    "SalesCurrencyCode": "USD",
    "DualbusSourceVersion": 4,
    "Unmapped": "left out",
}


def test_parse_time_rejects_garbage() -> None:
    """A value that is no date-time is refused rather than guessed."""
    with pytest.raises(ValueError, match="not a date-time"):
        parse_time("yesterday")


def test_envelope_carries_full_mapped_state_in_source_names() -> None:
    """An update's data holds every carried field by its F&O name, and nothing the map does not carry."""
    envelope = build_envelope(_customers(), ROW, Operation.UPDATE, source_version=7, time=datetime.now(UTC))
    assert envelope.key == {"dataAreaId": "usmf", "CustomerAccount": "C-1"}
    assert envelope.company == "USMF"
    assert envelope.area == "customer"
    assert envelope.data["OrganizationName"] == "Fabrikam"
    assert "Unmapped" not in envelope.data
    assert "DualbusSourceVersion" not in envelope.data


def test_base_version_travels_beside_the_data() -> None:
    """The base version is an envelope attribute of its own, not part of the mapped data."""
    envelope = build_envelope(
        _customers(), ROW, Operation.UPDATE, source_version=7, time=datetime.now(UTC), base_version=4
    )
    assert envelope.base_version == 4
    assert orjson_roundtrip(envelope).base_version == 4


def orjson_roundtrip(envelope):
    return type(envelope).from_json(envelope.to_json())


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
    key = {"dataAreaId": "usmf", "CustomerAccount": "C-1"}
    envelope = build_envelope(
        _customers(), {}, Operation.DELETE, source_version=9, time=datetime.now(UTC), key=key
    )
    assert envelope.data == {}
    assert envelope.key == key


def test_delete_carries_only_the_values_that_name_the_target_row() -> None:
    """A vendor contact's delete carries its ContactPersonId from the row it is given, nothing else."""
    contacts = next(t for t in source_tables(load_maps(), Origin.FO) if t.table_map.name == "vendor_contacts")
    key = {
        "dataAreaId": "usmf",
        "ContactPersonPartyNumber": "000001",
        "AssociatedContactType": "Vendor",
        "AssociatedContactNumber": "V-1",
    }
    row = {**key, "ContactPersonId": "CP-1", "FirstName": "Ann"}
    now = datetime.now(UTC)
    envelope = build_envelope(contacts, row, Operation.DELETE, source_version=9, time=now, key=key)
    assert (envelope.key, envelope.data) == (key, {"ContactPersonId": "CP-1"})


def test_echo_filter_matches_dataverse_own_user_in_any_case() -> None:
    """A Dataverse row last modified by dualbus's own user is an echo; another user's is not."""
    echo = EchoFilter.of("6F1C0000-0000-0000-0000-000000000001", None, "")
    assert echo.is_echo({"_modifiedby_value": "6f1c0000-0000-0000-0000-000000000001"})
    assert not echo.is_echo({"_modifiedby_value": "someone-else"})
    assert not echo.is_echo({})


def test_key_filters_use_each_field_type_literal() -> None:
    """Strings are quoted with quotes doubled, enums written as F&O's enum literals, date-times bare."""
    customers = fo_entities()["CustomersV3"]
    assert key_filter(customers, {"dataAreaId": "usmf", "CustomerAccount": "O'Neil"}) == (
        "dataAreaId eq 'usmf' and CustomerAccount eq 'O''Neil'"
    )
    purposes = fo_entities()["OrganizationHierarchyPurposes"]
    assert key_filter(purposes, {"HierarchyPurpose": "Security"}) == (
        "HierarchyPurpose eq Microsoft.Dynamics.DataEntities.HierarchyPurpose'Security'"
    )
    published = fo_entities()["OrganizationHierarchyPublished"]
    assert key_filter(published, {"validFrom": "2026-01-01T00:00:00Z"}) == "validFrom eq 2026-01-01T00:00:00Z"
    assert key_filter(customers, {"DualbusSourceVersion": 5}) == "DualbusSourceVersion eq 5"


def test_a_reconcile_repair_of_an_fo_row_takes_the_clock_and_the_base_version() -> None:
    """An F&O repair's version is a clock reading (F&O has no row version), its base the row's mark."""
    clock = VersionClock(now=lambda: 1_767_323_045_000_000)
    event = repair_event(_customers(), ROW, run_id="run-1", now=datetime.now(UTC), create=False, clock=clock)
    again = repair_event(_customers(), ROW, run_id="run-1", now=datetime.now(UTC), create=False, clock=clock)
    assert (event.source_version, event.base_version, event.repair) == (1_767_323_045_000_000, 4, True)
    assert again.source_version > event.source_version
