"""Reconcile against the running twins over HTTP: planted drift of each kind is found, exactly."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.ops.reconcile import (
    DriftKind,
    FieldDrift,
    ReconcileOptions,
    ReconcileReport,
    areconcile,
    reconcile,
)
from dualbus.producers.tables import SourceTable
from dualbus.sandbox.servicebus.launcher import EmulatorThread
from dualbus.shared.envelope import Operation, Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.settings import Settings
from tests.integration.ops.reconcile_support import (
    Twins,
    command_environment,
    customer_consumer,
    drain_tap,
)

pytestmark = pytest.mark.integration


@dataclass
class Planted:
    """The customers drift was planted on, by kind."""

    gone_in_dataverse: dict[str, Any]
    gone_in_fo: dict[str, Any]
    renamed: dict[str, Any]
    relinked: dict[str, Any]
    new_currency: str


def _customers(twins: Twins) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with twins.fo_client() as client:
        body = client.get("/data/CustomersV3", params={"cross-company": "true"}).json()
        rows.extend(body["value"])
        while "@odata.nextLink" in body:
            body = client.get(body["@odata.nextLink"]).json()
            rows.extend(body["value"])
    return sorted(rows, key=lambda r: (r["dataAreaId"], r["CustomerAccount"]))


def _account_id(client: Any, customer: dict[str, Any]) -> str:
    found = client.get("accounts", params={"$filter": f"accountnumber eq '{customer['CustomerAccount']}'"})
    [row] = found.json()["value"]
    return str(row["accountid"])


def plant_drift(twins: Twins) -> Planted:
    """One record missing on each side, one differing field and one differing lookup, in four companies."""
    by_company: dict[str, dict[str, Any]] = {}
    for row in _customers(twins):
        by_company.setdefault(row["dataAreaId"], row)
    gone_dv, gone_fo, renamed, relinked = list(by_company.values())[:4]
    new_currency = "CHF" if relinked["SalesCurrencyCode"] != "CHF" else "SEK"
    with twins.dataverse_client() as dv:
        assert dv.delete(f"accounts({_account_id(dv, gone_dv)})").status_code == 204
        assert dv.patch(f"accounts({_account_id(dv, renamed)})", json={"name": "Renamed by hand"}).is_success
        bind = {
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies(isocurrencycode='{new_currency}')"
        }
        assert dv.patch(f"accounts({_account_id(dv, relinked)})", json=bind).is_success
    with twins.fo_client() as fo:
        key = f"dataAreaId='{gone_fo['dataAreaId']}',CustomerAccount='{gone_fo['CustomerAccount']}'"
        path = f"/data/CustomersV3({key})"
        assert fo.delete(path, params={"cross-company": "true"}).status_code == 204
    return Planted(gone_dv, gone_fo, renamed, relinked, new_currency)


def _by_account(report: ReconcileReport) -> dict[str, Any]:
    return {str(d.key["CustomerAccount"]): d for d in report.drifts}


def test_twins_in_step_show_no_drift(twins: Twins) -> None:
    """Right after the sink wrote every F&O row to Dataverse, reconcile reads all and finds nothing."""
    report = reconcile(twins.settings)
    assert not report.has_drift
    assert report.drifts == []
    customers = next(m for m in report.maps if m.name == "customers")
    assert customers.fo_rows == customers.dataverse_rows == len(_customers(twins))
    assert sum(s.compared for s in report.summaries if s.area == "customer") > customers.fo_rows


def test_planted_drift_is_found_exactly(twins: Twins) -> None:
    """Each planted drift shows once, with its kind, company and fields; nothing else is reported."""
    planted = plant_drift(twins)
    report = reconcile(twins.settings)
    found = _by_account(report)
    assert set(found) == {
        planted.gone_in_dataverse["CustomerAccount"],
        planted.gone_in_fo["CustomerAccount"],
        planted.renamed["CustomerAccount"],
        planted.relinked["CustomerAccount"],
    }
    assert found[planted.gone_in_dataverse["CustomerAccount"]].kind is DriftKind.MISSING_IN_DATAVERSE
    assert found[planted.gone_in_fo["CustomerAccount"]].kind is DriftKind.MISSING_IN_FO
    renamed = found[planted.renamed["CustomerAccount"]]
    assert renamed.fields == (FieldDrift("name", planted.renamed["OrganizationName"], "Renamed by hand"),)
    relinked = found[planted.relinked["CustomerAccount"]]
    assert relinked.fields == (
        FieldDrift("transactioncurrencyid", planted.relinked["SalesCurrencyCode"], planted.new_currency),
    )
    assert relinked.company == planted.relinked["dataAreaId"].upper()
    assert report.orphans_kept == 1
    assert sum(s.drifted for s in report.summaries) == 4
    assert all(s.area == "customer" for s in report.summaries if s.drifted)


def test_areas_and_companies_limit_the_run(twins: Twins) -> None:
    """Only the chosen areas are read, and only the chosen companies' drift is counted."""
    planted = plant_drift(twins)
    company = planted.renamed["dataAreaId"]
    report = reconcile(twins.settings, areas=["customer"], companies=[company])
    assert {m.area for m in report.maps} == {"customer"}
    assert [d.key["CustomerAccount"] for d in report.drifts] == [planted.renamed["CustomerAccount"]]
    assert not reconcile(twins.settings, areas=["vendor", "product"]).has_drift


def test_command_exit_codes_and_json(twins: Twins) -> None:
    """The command exits 0 without drift and 3 with it, and --json prints the records for scripts."""
    runner = CliRunner()
    environment = command_environment(twins.settings)
    clean = runner.invoke(app, ["reconcile", "--areas", "customer", "--json"], env=environment)
    assert clean.exit_code == 0, clean.output
    plant_drift(twins)
    drifted = runner.invoke(app, ["reconcile", "-a", "customer,vendor", "--json"], env=environment)
    assert drifted.exit_code == 3, drifted.output
    data = orjson.loads(drifted.stdout)
    assert data["drift"] is True
    assert sorted(r["kind"] for r in data["records"]) == [
        "differs",
        "differs",
        "missing_in_dataverse",
        "missing_in_fo",
    ]
    table = runner.invoke(app, ["reconcile", "-a", "customer"], env=environment)
    assert table.exit_code == 3
    assert "Drift found." in table.stdout


def _fo_state(customer: dict[str, Any]) -> dict[str, Any]:
    carried = (*SourceTable(load_maps()["customers"], Origin.FO).carried_fields, "PartyType")
    return {name: customer[name] for name in carried if name in customer}


def test_repair_publishes_the_source_state_of_each_drifted_record(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """--repair sends one repair per drifted record that F&O holds, with F&O's state; the orphan stays."""
    planted = plant_drift(twins)
    settings = twins.with_servicebus(tap_emulator.connection_string)
    report = reconcile(settings, areas=["customer"], repair=True)
    assert (report.repairs_published, report.deletes_published, report.orphans_kept) == (3, 0, 1)
    events = {str(e.key["CustomerAccount"]): e for e in drain_tap(tap_emulator.connection_string, "customer")}
    expected = {"create": planted.gone_in_dataverse, "update": planted.renamed}
    assert set(events) == {
        planted.gone_in_dataverse["CustomerAccount"],
        planted.renamed["CustomerAccount"],
        planted.relinked["CustomerAccount"],
    }
    for operation, customer in expected.items():
        event = events[customer["CustomerAccount"]]
        assert event.operation.value == operation
        assert event.data == _fo_state(customer)
    assert all(e.repair and e.origin is Origin.FO and e.entity == "CustomersV3" for e in events.values())
    for customer in expected.values():
        event = events[customer["CustomerAccount"]]
        assert event.source_version > 0  # a reading of the F&O version clock
        assert event.base_version == (customer.get("DualbusSourceVersion") or 0)


def test_delete_orphans_publishes_a_delete_for_the_record_gone_from_the_source(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """With --delete-orphans the record missing in F&O gets a delete keyed by F&O's names and values (its
    company as F&O answers it, so that the delete goes to the record's own session)."""
    planted = plant_drift(twins)
    settings = twins.with_servicebus(tap_emulator.connection_string)
    report = reconcile(settings, areas=["customer"], repair=True, delete_orphans=True)
    assert (report.repairs_published, report.deletes_published, report.orphans_kept) == (3, 1, 0)
    [delete] = [
        e for e in drain_tap(tap_emulator.connection_string, "customer") if e.operation is Operation.DELETE
    ]
    gone = planted.gone_in_fo
    assert delete.key == {
        "dataAreaId": gone["dataAreaId"].lower(),
        "CustomerAccount": gone["CustomerAccount"],
    }
    assert delete.repair


async def _consume_until_in_step(settings: Settings, wanted: set[str], *, within: float = 45.0) -> set[str]:
    """Run the customer consumer to Dataverse until none of ``wanted`` drifts; returns those that still do.

    The bound is generous because it only matters on a failure: a loaded machine is slow, not wrong.
    """
    deadline = time.monotonic() + within
    async with customer_consumer(settings):
        while True:
            report = await areconcile(settings, ReconcileOptions(areas=frozenset({"customer"})))
            drifting = {str(d.key["CustomerAccount"]) for d in report.drifts} & wanted
            if not drifting or time.monotonic() > deadline:
                return drifting
            await asyncio.sleep(0.5)


def test_consumer_applies_the_repairs_of_records_missing_on_either_side(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """After --repair --delete-orphans, the consumer creates the missing account and deletes the orphan."""
    planted = plant_drift(twins)
    settings = twins.with_servicebus(tap_emulator.connection_string)
    reconcile(settings, areas=["customer"], repair=True, delete_orphans=True)
    missing = {planted.gone_in_dataverse["CustomerAccount"], planted.gone_in_fo["CustomerAccount"]}
    assert asyncio.run(_consume_until_in_step(settings, missing)) == set()


def test_consumer_applies_the_repairs_of_differing_records(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """After --repair, the consumer restores the differing field and lookup, and reconcile agrees."""
    planted = plant_drift(twins)
    settings = twins.with_servicebus(tap_emulator.connection_string)
    reconcile(settings, areas=["customer"], repair=True)
    differing = {planted.renamed["CustomerAccount"], planted.relinked["CustomerAccount"]}
    assert asyncio.run(_consume_until_in_step(settings, differing)) == set()


def test_rows_the_map_cannot_transform_are_reported_and_the_run_goes_on(twins: Twins) -> None:
    """A currency whose name Dataverse cannot hold is listed as unmappable, not as missing, and counts."""
    with twins.fo_client() as fo:
        fo.patch("/data/Currencies(CurrencyCode='USD')", json={"Name": "D" * 101}).raise_for_status()
    report = reconcile(twins.settings, areas=["currency", "customer"])
    [problem] = report.problems
    assert (problem.map_name, problem.side, problem.row) == ("currency", "fo", "CurrencyCode=USD")
    assert "over the maximum of 100" in problem.message
    assert report.drifts == []
    assert report.has_drift
    assert next(m for m in report.maps if m.name == "customers").fo_rows > 0


def test_dataverse_as_source_compares_in_fo_names(twins: Twins) -> None:
    """With --source dataverse the same drift shows, its fields named as on F&O and mapped from Dataverse."""
    planted = plant_drift(twins)
    report = reconcile(twins.settings, areas=["customer"], source="dataverse")
    assert {m.source for m in report.maps} == {"dataverse"}
    found = _by_account(report)
    assert found[planted.renamed["CustomerAccount"]].fields == (
        FieldDrift("OrganizationName", planted.renamed["OrganizationName"], "Renamed by hand"),
    )
    assert found[planted.relinked["CustomerAccount"]].fields == (
        FieldDrift("SalesCurrencyCode", planted.relinked["SalesCurrencyCode"], planted.new_currency),
    )
    assert found[planted.gone_in_fo["CustomerAccount"]].kind is DriftKind.MISSING_IN_FO
    assert len(found) == 4
