"""Killed with SIGKILL and restarted: a producer and an initial sync leave no gap and no duplicate."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import httpx
import orjson
import pytest

from dualbus.demo.processes import free_port
from dualbus.sandbox.dataverse import RunningDataverse
from dualbus.sandbox.fo import FoHandle, WebhookEndpoint
from tests.integration.producers.support import (
    DV_CLIENTS,
    OWN_USERS,
    WEBHOOK_KEY,
    Emulator,
    ProducerProcess,
    customer,
    drain_tap,
    environment_for,
    settings_for,
    tapped,
    wait_healthy,
    wait_until,
)

# ``long``: handed to a worker first (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.long]


def _maker(twin: RunningDataverse) -> httpx.Client:
    token = httpx.post(
        twin.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "maker",
            "client_secret": DV_CLIENTS["maker"],
            "scope": twin.scope,
        },
    ).json()["access_token"]
    return httpx.Client(base_url=twin.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


class _AccountWriter(threading.Thread):
    """Creates accounts one after another until told to stop: at least ``at_least``, at most ``at_most``."""

    def __init__(self, twin: RunningDataverse, *, at_least: int, at_most: int, pause: float) -> None:
        super().__init__(name="account-writer")
        self.twin = twin
        self.at_least = at_least
        self.at_most = at_most
        self.pause = pause
        self.written = 0
        self.enough = threading.Event()

    def run(self) -> None:
        with _maker(self.twin) as maker:
            while self.written < self.at_least or (self.written < self.at_most and not self.enough.is_set()):
                account = {
                    "accountnumber": f"K-{self.written:04d}",
                    "name": f"Account {self.written}",
                    "customertypecode": 3,
                    "msdyn_company@odata.bind": "cdm_companies(cdm_companycode='USMF')",
                }
                assert maker.post("accounts", json=account).is_success
                self.written += 1
                time.sleep(self.pause)  # the pace of the changes, not a wait for anything


@pytest.mark.timeout(240)  # two producer starts, which a busy machine can make slow
def test_killed_producer_restarts_without_gap_or_duplicate(
    emulator: Emulator, dataverse: RunningDataverse, tmp_path: Path
) -> None:
    """A Dataverse producer SIGKILLed mid-stream and restarted publishes every change exactly once."""
    with _maker(dataverse) as maker:
        assert maker.post("cdm_companies", json={"cdm_companycode": "USMF", "cdm_name": "Contoso"}).is_success
    env = environment_for(
        settings_for(emulator, tmp_path, dataverse=dataverse),
        DUALBUS_PRODUCER__OWN_USERS=json.dumps(list(OWN_USERS)),
        DUALBUS_PRODUCER__POLL_INTERVAL_SECONDS="0.1",
    )
    # The writer goes on until the restarted producer is up: changes come before, during and after the kill.
    writer = _AccountWriter(dataverse, at_least=100, at_most=400, pause=0.02)
    producer = ProducerProcess("dataverse", env, areas="company,customer")
    try:
        try:
            producer.wait_started()
            writer.start()
            wait_until(
                lambda: tapped(emulator.connection_string, "customer") > 0,
                timeout=60,
                what="the producer published a first account",
            )
            assert writer.is_alive(), "every account was written before the kill"
            producer.kill()
            producer = ProducerProcess("dataverse", env, areas="company,customer")
            producer.wait_started()
        finally:
            writer.enough.set()
            if writer.ident is not None:
                writer.join(timeout=60)
        total = writer.written
        # Companies go from F&O to Dataverse only (shared/maps/data/company.json): accounts alone arrive.
        events = drain_tap(emulator.connection_string, ["company", "customer"], expect=total, timeout=60)
        events += drain_tap(emulator.connection_string, ["company", "customer"], idle=1.5)
    finally:
        producer.stop()
    ids = Counter(e.id for e in events)
    assert max(ids.values()) == 1, "a change was delivered twice"
    accounts = {e.key["accountnumber"] for e in events if e.entity == "accounts"}
    assert accounts == {f"K-{n:04d}" for n in range(total)}


def _seed(fo: FoHandle, customers: int) -> None:
    store = fo.twin.store
    store.insert("LegalEntities", {"LegalEntityId": "USMF", "Name": "Contoso"}, modified_by="workload")
    store.insert(
        "Currencies", {"CurrencyCode": "USD", "Name": "Dollar", "Symbol": "$"}, modified_by="workload"
    )
    store.insert(
        "CustomerGroups",
        {"dataAreaId": "usmf", "CustomerGroupId": "10", "Description": "Retail"},
        modified_by="workload",
    )
    for number in range(customers):
        store.insert(
            "CustomersV3",
            {
                "dataAreaId": "usmf",
                "CustomerAccount": f"S-{number:05d}",
                "OrganizationName": f"Customer {number}",
                "PartyType": "Organization",
                "CustomerGroupId": "10",
                "SalesCurrencyCode": "USD",
            },
            modified_by="workload",
        )


def _sync_command() -> list[str]:
    code = "from dualbus.cli import main; main()"
    return [
        sys.executable,
        "-c",
        code,
        "initial-sync",
        "--from",
        "fo",
        "--areas",
        "company,currency,customer",
        "--page-size",
        "100",
        "--no-wait",  # no consumers here: what matters is that every record gets published
    ]


def _pages_done(state_dir: Path) -> int:
    """Customer pages checkpointed so far, read without writing to the producer's store."""
    path = state_dir / "producer-fo.sqlite3"
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT value FROM checkpoints WHERE name LIKE 'initial.fo.customers.%'"
            ).fetchall()
    except sqlite3.OperationalError:
        return 0  # not created yet
    return sum(int(orjson.loads(row[0]).get("pages", 0)) for row in rows)


def test_killed_initial_sync_resumes_and_completes(emulator: Emulator, fo: FoHandle, tmp_path: Path) -> None:
    """An initial sync SIGKILLed halfway and run again publishes every record, each once."""
    customers = 1500  # fifteen pages of 100: the kill comes after five, well before the end
    _seed(fo, customers)
    env = environment_for(settings_for(emulator, tmp_path, fo=fo), DUALBUS_LOG_LEVEL="WARNING")
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(_sync_command(), env=env, stdout=log, stderr=log)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while _pages_done(tmp_path) < 5 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        first.kill()
    finally:
        first.wait(timeout=10)
        log.close()
    halfway = _pages_done(tmp_path)
    assert 0 < halfway < customers // 100
    second = subprocess.run(  # noqa: S603 - our own command line
        _sync_command(), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "yes" in second.stdout  # the summary marks the resumed table
    events = drain_tap(
        emulator.connection_string, ["company", "currency", "customer"], expect=customers + 3, timeout=60
    )
    events += drain_tap(emulator.connection_string, ["company", "currency", "customer"], idle=1.5)
    assert max(Counter(e.id for e in events).values()) == 1
    published = {e.key["CustomerAccount"] for e in events if e.entity == "CustomersV3"}
    assert published == {f"S-{n:05d}" for n in range(customers)}
    assert {e.entity for e in events} == {"LegalEntities", "Currencies", "CustomerGroups", "CustomersV3"}


def test_start_up_scan_publishes_what_events_missed_while_the_producer_was_down(
    emulator: Emulator, fo: FoHandle, tmp_path: Path
) -> None:
    """Changes whose events F&O gave up on while the producer was down are published at restart, each once."""
    total = 20
    port = free_port()
    env = environment_for(
        settings_for(emulator, tmp_path, fo=fo),
        DUALBUS_PRODUCER__FO_EVENTS="webhook",
        DUALBUS_PRODUCER__WEBHOOK_PORT=str(port),
        DUALBUS_PRODUCER__FO_WEBHOOK_KEY=WEBHOOK_KEY,
    )
    producer = ProducerProcess("fo", env, areas="customer")
    try:
        producer.wait_started()
        wait_healthy(f"http://127.0.0.1:{port}/healthz")
        endpoint = WebhookEndpoint(f"http://127.0.0.1:{port}/fo/events", code=WEBHOOK_KEY, name="producer")
        fo.twin.events.add_endpoint(endpoint, ["CustomersV3"])
        with fo.client("workload") as workload:
            for number in range(2 * total):
                if number == total:
                    assert fo.twin.events.flush(timeout=60)
                    producer.kill()
                row = customer(f"W-{number:03d}", f"Customer {number}")
                assert workload.post("/data/CustomersV3", json=row).status_code == 201
        assert fo.twin.events.flush(timeout=60)
        assert fo.twin.events.stats.given_up == {"producer": total}
        producer = ProducerProcess("fo", env, areas="customer")
        producer.wait_started()
        events = drain_tap(emulator.connection_string, ["customer"], expect=2 * total, timeout=60)
        events += drain_tap(emulator.connection_string, ["customer"], idle=1.5)
    finally:
        producer.stop()
    published = Counter(e.key["CustomerAccount"] for e in events)
    assert set(published) == {f"W-{n:03d}" for n in range(2 * total)}
    # The scan found the digests the events had recorded: nothing published by an event went out again.
    assert max(published.values()) == 1
