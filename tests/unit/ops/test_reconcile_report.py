"""Reconcile's report and repair events: counts per area and company, JSON shape, repair envelopes."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from rich.console import Console

from dualbus.ops._reconcile_repair import may_delete_orphan, orphan_delete, repair_event, source_version
from dualbus.ops.reconcile import DriftKind, FieldDrift, ReconcileReport, RecordDrift, RowProblem
from dualbus.ops.reconcile_print import print_report
from dualbus.producers.clock import VersionClock
from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.messages import ordering_bucket

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CUSTOMERS = SourceTable(load_maps()["customers"], Origin.FO)
ROW = {
    "dataAreaId": "usmf",
    "CustomerAccount": "US-001",
    "OrganizationName": "Contoso",
    "PartyType": "Organization",
    "SalesCurrencyCode": "USD",
    "DualbusSourceVersion": 7,
}


def drift(kind: DriftKind, company: str | None = "USMF") -> RecordDrift:
    fields = (FieldDrift("name", "a", "b"),) if kind is DriftKind.DIFFERS else ()
    return RecordDrift("customers", "customer", company, {"CustomerAccount": "X"}, kind, fields)


def test_counts_per_area_and_company() -> None:
    """Each drift kind lands in its own count, per area and company; compared rows alone are no drift."""
    report = ReconcileReport(run_id="r", started=NOW)
    report.area("customer", "DEMF").compared += 4
    assert not report.has_drift
    for kind in DriftKind:
        report.count(drift(kind))
    [demf, usmf] = report.summaries
    assert (demf.company, demf.drifted) == ("DEMF", 0)
    assert (usmf.missing_in_fo, usmf.missing_in_dataverse, usmf.differing) == (1, 1, 1)
    assert report.has_drift


def test_unmappable_rows_count_as_drift() -> None:
    """A row the map cannot transform makes the run report drift, as the systems cannot be in step."""
    report = ReconcileReport(run_id="r", started=NOW)
    report.area("currency", None).problems += 1
    assert report.has_drift


def test_json_shape_carries_records_with_both_values() -> None:
    """The JSON report lists drifted records with their kind, key and both values of each field."""
    report = ReconcileReport(run_id="r", started=NOW)
    report.drifts.append(drift(DriftKind.DIFFERS))
    report.count(report.drifts[0])
    data = orjson.loads(orjson.dumps(report.as_dict()))
    assert data["drift"] is True
    assert data["records"] == [
        {
            "map": "customers",
            "area": "customer",
            "company": "USMF",
            "key": {"CustomerAccount": "X"},
            "kind": "differs",
            "fields": [{"field": "name", "fo": "a", "dataverse": "b"}],
        }
    ]
    assert data["summary"][0]["drifted"] == 1


def test_repair_event_carries_the_source_state() -> None:
    """A repair has the row's mapped state, a reading of the F&O clock, the base version and its own id."""
    clock = VersionClock(now=lambda: 1_780_000_000_000_000)
    event = repair_event(CUSTOMERS, ROW, run_id="run-1", now=NOW, create=False, clock=clock)
    original = Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key=event.key,
        operation=Operation.UPDATE,
        source_version=event.source_version,
        time=NOW,
    )
    assert event.repair
    assert event.id != original.id
    assert event.source_version == 1_780_000_000_000_000
    assert event.base_version == 7
    assert event.time == NOW
    assert event.company == "USMF"
    assert event.data["OrganizationName"] == "Contoso"
    assert "DualbusSourceVersion" not in event.data


def test_repair_event_carries_the_source_filter_fields() -> None:
    """The fields of the map's source filter travel too, so that a consumer takes the record as the map's."""
    event = repair_event(CUSTOMERS, ROW, run_id="run-1", now=NOW, create=False)
    assert event.data["PartyType"] == "Organization"


def test_repairs_of_one_record_differ_between_runs() -> None:
    """Two runs repairing the same row publish different ids, so duplicate detection keeps both."""
    first = repair_event(CUSTOMERS, ROW, run_id="run-1", now=NOW, create=True)
    second = repair_event(CUSTOMERS, ROW, run_id="run-2", now=NOW, create=True)
    assert first.operation is Operation.CREATE
    assert first.id != second.id


def test_orphan_delete_maps_the_key_and_outbids_the_mark() -> None:
    """Deleting an orphan names it by the source's key names and carries a version above the target's mark."""
    event = orphan_delete(CUSTOMERS, ("USMF", "US-404"), 41, run_id="run-1", now=NOW)
    assert event.operation is Operation.DELETE
    # dataAreaId as F&O answers it, as the producer's changes of the record carry it: the same session.
    assert event.key == {"dataAreaId": "usmf", "CustomerAccount": "US-404"}
    # The F&O producer's key of the record, from the row as F&O's OData answers it.
    producers = CUSTOMERS.key_of({**ROW, "dataAreaId": "usmf", "CustomerAccount": "US-404"})
    assert ordering_bucket("customer", event.key) == ordering_bucket("customer", producers)
    assert event.source_version == 42
    assert event.repair
    assert orphan_delete(CUSTOMERS, ("USMF", "US-404"), None, run_id="r", now=NOW).source_version == 1


def test_a_dataverse_orphans_company_is_named_as_the_dataverse_producer_names_it() -> None:
    """The F&O row's key holds its company in lower case; the Dataverse producer's changes of the record
    carry Dataverse's company code (upper case), and the delete goes to their session."""
    accounts = SourceTable(load_maps()["customers"], Origin.DATAVERSE)
    event = orphan_delete(accounts, ("usmf", "C-1"), 5, run_id="r", now=NOW)
    producers = accounts.key_of({"msdyn_company": "USMF", "accountnumber": "C-1", "customertypecode": 3})
    assert event.key == producers
    assert ordering_bucket("customer", event.key) == ordering_bucket("customer", producers)


def test_an_orphans_value_mapped_key_is_named_by_the_sources_value() -> None:
    """A hierarchy purpose's Dataverse 806380003 is F&O's "OrganizationChart": copied as it was, the delete
    named no F&O row and could never be applied."""
    purposes = SourceTable(load_maps()["organisation_hierarchy_purposes"], Origin.FO)
    event = orphan_delete(purposes, (806380003, "Organization chart"), 3, run_id="r", now=NOW)
    assert event.key["HierarchyPurpose"] == "OrganizationChart"


def test_repair_event_takes_the_reading_made_before_its_page_was_read() -> None:
    """An F&O repair carries the clock reading taken before its page was read, not a reading of now."""
    clock = VersionClock(now=lambda: 1_780_000_000_000_000)
    event = repair_event(CUSTOMERS, ROW, run_id="r", now=NOW, create=False, clock=clock, fo_reading=5)
    assert event.source_version == 5


def test_orphans_of_two_way_maps_without_a_version_mark_are_never_deleted() -> None:
    """On a two-way map only rows dualbus wrote (a mark; F&O's 0 is none) may go; on a one-way map any."""
    customers, units = load_maps()["customers"], load_maps()["units"]
    assert may_delete_orphan(customers, 41)
    assert not may_delete_orphan(customers, None)
    assert not may_delete_orphan(customers, 0)
    assert may_delete_orphan(units, None)


def test_report_says_which_orphans_were_kept_as_never_synced() -> None:
    """The JSON and the printed report say how many orphans were kept because dualbus never wrote them."""
    report = ReconcileReport(run_id="r", started=NOW, orphans_kept=3, orphans_never_synced=2)
    assert report.as_dict()["orphans_never_synced"] == 2
    text = _printed(report)
    assert "3 records exist only on their target side" in text
    assert "2 of them dualbus never wrote" in text
    assert "never deleted (not with --delete-orphans either)" in text


def test_dataverse_version_is_the_row_version() -> None:
    """A Dataverse source row's version mark is its versionnumber."""
    assert source_version(Origin.DATAVERSE, {"versionnumber": 907}) == 907


def test_printed_report_shows_counts_records_and_verdict() -> None:
    """The printed report has the area's counts, each drifted record with both values, and the verdict."""
    report = ReconcileReport(run_id="r", started=NOW)
    report.area("customer", "USMF").compared += 7
    report.drifts.append(drift(DriftKind.DIFFERS))
    report.count(report.drifts[0])
    text = _printed(report)
    assert "customer" in text
    assert "USMF" in text
    assert "name: 'a' ≠ 'b'" in text
    assert "Drift found." in text
    assert "No drift." in _printed(ReconcileReport(run_id="r", started=NOW))


def _printed(report: ReconcileReport) -> str:
    """The report as ``print_report`` prints it, in plain text."""
    out = Console(record=True, width=200)
    print_report(report, out)
    return out.export_text()


def test_the_systems_text_is_printed_as_it_is_not_read_as_markup() -> None:
    """A value, key or message holding square brackets is printed whole, on a console that reads markup.

    rich read "[/EU]" as a closing tag and failed (after the repairs were published), and dropped
    "[internal]" as an unknown style.
    """
    report = ReconcileReport(run_id="r", started=NOW)
    record = RecordDrift(
        "customers",
        "customer",
        "[bold]US",
        {"CustomerAccount": "[X]"},
        DriftKind.DIFFERS,
        (FieldDrift("name", "Contoso [/EU]", "Contoso"),),
    )
    report.drifts.append(record)
    report.count(record)
    report.problems.append(RowProblem("customers", "customer", "fo", "[row 1]", "value [internal] refused"))
    text = _printed(report)
    for shown in ("[bold]US", "[X]", "'Contoso [/EU]'", "[row 1]", "value [internal] refused"):
        assert shown in text
