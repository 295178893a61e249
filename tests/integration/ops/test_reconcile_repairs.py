"""Reconcile's repairs against the running twins and emulator: they change only what they may, and never
outbid a newer change.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient

from dualbus.consumers import ApplyResult, ConsumerMetrics
from dualbus.ops.reconcile import DriftKind, reconcile
from dualbus.producers.clock import VersionClock
from dualbus.producers.events import build_envelope
from dualbus.producers.fo_rows import base_version
from dualbus.producers.tables import SourceTable
from dualbus.sandbox.servicebus.launcher import EmulatorThread
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.maps import Side, load_maps
from dualbus.shared.messages import to_message
from dualbus.shared.settings import Settings
from dualbus.shared.topology import Direction, default_topology
from tests.integration.ops.reconcile_support import (
    Twins,
    customer_consumer,
    drain_tap,
)

pytestmark = pytest.mark.integration

CROSS_COMPANY = {"cross-company": "true"}


def _customer_path(customer: dict[str, Any]) -> str:
    key = f"dataAreaId='{customer['dataAreaId']}',CustomerAccount='{customer['CustomerAccount']}'"
    return f"/data/CustomersV3({key})"


def _first_page_customer(twins: Twins) -> dict[str, Any]:
    """An organisation customer on the first page that reconcile reads of F&O's customers."""
    with twins.fo_client() as fo:
        rows: list[dict[str, Any]] = fo.get("/data/CustomersV3", params=CROSS_COMPANY).json()["value"]
    return next(row for row in rows if row["PartyType"] == "Organization")


def _dataverse_account(twins: Twins, number: str) -> dict[str, Any] | None:
    with twins.dataverse_client() as dv:
        found = dv.get("accounts", params={"$filter": f"accountnumber eq '{number}'"}).json()["value"]
    return found[0] if found else None


def test_delete_orphans_leaves_a_record_made_in_dataverse_that_f_and_o_has_not_received(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """An account made in Dataverse whose create has not reached F&O gets no delete; a written one does."""
    new_company = _first_page_customer(twins)["dataAreaId"].upper()
    with twins.dataverse_client() as dv:
        made_by_a_user = {
            "accountnumber": "NEW-1",
            "name": "Created in Dataverse",
            "customertypecode": 3,
            "msdyn_company@odata.bind": f"cdm_companies(cdm_companycode='{new_company}')",
        }
        assert dv.post("accounts", json=made_by_a_user).is_success
    gone = _first_page_customer(twins)
    with twins.fo_client() as fo:
        # Its account was written by dualbus (it holds a version mark): a true orphan.
        assert fo.delete(_customer_path(gone), params=CROSS_COMPANY).status_code == 204
    settings = twins.with_servicebus(tap_emulator.connection_string)
    report = reconcile(settings, areas=["customer"], repair=True, delete_orphans=True)
    missing = {str(d.key["CustomerAccount"]) for d in report.drifts if d.kind is DriftKind.MISSING_IN_FO}
    assert missing == {"NEW-1", gone["CustomerAccount"]}
    assert (report.deletes_published, report.orphans_kept, report.orphans_never_synced) == (1, 1, 1)
    deletes = [
        e for e in drain_tap(tap_emulator.connection_string, "customer") if e.operation is Operation.DELETE
    ]
    assert [e.key["CustomerAccount"] for e in deletes] == [gone["CustomerAccount"]]
    assert report.as_dict()["orphans_never_synced"] == 1


def test_delete_orphans_keeps_a_row_someone_renamed_after_dualbus_wrote_it(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """A synced account renamed in Dataverse while its change is on its way to F&O holds dualbus's mark:
    it passed for an orphan, and its delete, sent back to F&O too, removed the record from both systems."""
    synced = _first_page_customer(twins)
    account = _dataverse_account(twins, synced["CustomerAccount"])
    assert account is not None
    with twins.dataverse_client() as dv:
        renamed = dv.patch(f"accounts({account['accountid']})", json={"accountnumber": "REN-1"})
        assert renamed.is_success
    settings = twins.with_servicebus(tap_emulator.connection_string)
    report = reconcile(settings, areas=["customer"], repair=True, delete_orphans=True)
    missing = {str(d.key["CustomerAccount"]) for d in report.drifts if d.kind is DriftKind.MISSING_IN_FO}
    assert "REN-1" in missing
    deletes = [
        e for e in drain_tap(tap_emulator.connection_string, "customer") if e.operation is Operation.DELETE
    ]
    assert deletes == []
    assert report.orphans_kept >= 1


def test_companies_limit_the_products_compared_and_repaired(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """Other companies' products, whose Dataverse key names no company, are neither compared nor repaired."""
    with twins.dataverse_client() as dv:
        products = dv.get("products", params={"$select": "productid,productnumber,name"}).json()["value"]
        for product in products:
            assert dv.patch(f"products({product['productid']})", json={"name": "Renamed by hand"}).is_success
    with twins.fo_client() as fo:
        rows = fo.get("/data/CDSReleasedDistinctProducts", params=CROSS_COMPANY).json()["value"]
    company = rows[0]["dataAreaId"].upper()
    chosen = {row["ProductNumber"] for row in rows if row["dataAreaId"].upper() == company}
    assert len({row["dataAreaId"] for row in rows}) > 1, "the seed should hold products of several companies"
    settings = twins.with_servicebus(tap_emulator.connection_string)
    report = reconcile(settings, areas=["product"], companies=[company], repair=True)
    assert {d.company for d in report.drifts} == {company}
    assert len(report.drifts) == len(chosen) == report.repairs_published
    repairs = drain_tap(tap_emulator.connection_string, "product")
    assert {(e.company, e.key["ProductNumber"]) for e in repairs} == {(company, n) for n in chosen}
    # Units belong to no company and are always compared; no other company's rows are.
    assert {s.company for s in report.summaries if s.area == "product"} == {company, None}


def _publish_as_the_fo_producer(connection: str, row: dict[str, Any]) -> Envelope:
    """Publish the change of ``row`` as the F&O producer does: its state, a clock reading read after it."""
    table = SourceTable(load_maps()["customers"], Origin.FO)
    version = VersionClock().next()
    envelope = build_envelope(
        table,
        row,
        Operation.UPDATE,
        source_version=version,
        time=datetime.now(UTC),
        base_version=base_version(row),
    )
    with (
        ServiceBusClient.from_connection_string(connection) as client,
        client.get_topic_sender(topic_name=default_topology().topic("customer").name) as sender,
    ):
        sender.send_messages(to_message(envelope))
    return envelope


async def _consume_customers(settings: Settings, changes: int, *, within: float = 45.0) -> Counter[str]:
    """Run the customer consumer to Dataverse until it settled ``changes`` changes; what it did with them.

    The bound is generous because it only matters on a failure: a loaded machine is slow, not wrong.
    """
    metrics = ConsumerMetrics(area="customer", direction=Direction.TO_DATAVERSE.value)
    deadline = time.monotonic() + within
    settled = [result.value for result in ApplyResult]
    async with customer_consumer(settings, metrics):
        while True:
            done = Counter({name: metrics.counts[name] for name in settled if metrics.counts[name]})
            if done.total() >= changes or time.monotonic() > deadline:
                return done
            await asyncio.sleep(0.2)


def test_a_repair_never_overwrites_an_fo_edit_made_after_its_page_was_read(
    twins: Twins, tap_emulator: EmulatorThread
) -> None:
    """An F&O edit published while reconcile checks the page it read wins in Dataverse over the repair."""
    customer = _first_page_customer(twins)
    path, account = _customer_path(customer), customer["CustomerAccount"]
    with twins.fo_client() as fo:
        # An edit whose event was lost: Dataverse holds the old name, and reconcile repairs it.
        fo.patch(
            path, params=CROSS_COMPANY, json={"OrganizationName": "Edited, event lost"}
        ).raise_for_status()
    settings = twins.with_servicebus(tap_emulator.connection_string)
    live: list[Envelope] = []

    def edit_once_the_first_page_is_read(map_name: str, side: Side, _rows: int) -> None:
        if (map_name, side) != ("customers", "fo") or live:
            return
        with twins.fo_client() as fo:
            fo.patch(path, params=CROSS_COMPANY, json={"OrganizationName": "Edited live"}).raise_for_status()
            row = fo.get(path, params=CROSS_COMPANY).json()
        live.append(_publish_as_the_fo_producer(tap_emulator.connection_string, row))

    report = reconcile(settings, areas=["customer"], repair=True, progress=edit_once_the_first_page_is_read)
    [repair] = [e for e in drain_tap(tap_emulator.connection_string, "customer") if e.repair]
    assert (report.repairs_published, repair.key["CustomerAccount"]) == (1, account)
    assert repair.data["OrganizationName"] == "Edited, event lost"
    assert repair.source_version < live[0].source_version
    # The live change comes first in the record's session; the repair behind it is older, so stale.
    outcomes = asyncio.run(_consume_customers(settings, 2))
    assert outcomes == {ApplyResult.APPLIED.value: 1, ApplyResult.SKIPPED_STALE.value: 1}
    held = _dataverse_account(twins, account)
    assert held is not None
    assert held["name"] == "Edited live"
