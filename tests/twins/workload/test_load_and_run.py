"""Seeding the twins over HTTP, and ``run_sandbox`` starting, seeding, streaming and stopping both twins."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from sandbox.fo import start_fo
from sandbox.workload import StreamConfig, generate, load_fo, run_change_stream, run_sandbox, start_sandbox


def test_batch_load_creates_every_row_over_http() -> None:
    """Loading through $batch creates every generated row; the twin counts them across companies."""
    data = generate(11, customers=450, vendors=20, products=20)
    with start_fo() as fo, fo.client("workload") as client:
        started = time.monotonic()
        created = load_fo(client, data, batch_size=200)
        elapsed = time.monotonic() - started
        count = client.get(
            "/data/CustomersV3", params={"cross-company": "true", "$count": "true", "$top": "1"}
        )
    assert created == data.count()
    assert count.json()["@odata.count"] == 450
    assert elapsed < 20


def test_start_sandbox_seeds_dataverse_reference_data() -> None:
    """With the Dataverse twin present, its companies, currencies, groups and accounts are seeded too."""
    pytest.importorskip("sandbox.dataverse")
    run = start_sandbox(customers=12, vendors=2, products=2)
    try:
        dataverse = run.dataverse_client()
        assert dataverse is not None
        with dataverse:
            companies = dataverse.get("cdm_companies").json()["value"]
            accounts = dataverse.get("accounts", params={"$select": "accountnumber"}).json()["value"]
            currency = dataverse.get("transactioncurrencies(isocurrencycode='EUR')").json()
        assert {c["cdm_companycode"] for c in companies} >= {"USMF", "DEMF"}
        assert len(accounts) == 12
        assert currency["currencysymbol"] == "€"
    finally:
        run.stop()


def test_stream_on_both_sides_plants_refusals() -> None:
    """A two-sided stream changes both twins, counts concurrent edits and both kinds of planted refusal."""
    pytest.importorskip("sandbox.dataverse")
    run = start_sandbox(customers=30, vendors=10, products=2)
    try:
        dataverse = run.dataverse_client()
        assert dataverse is not None
        config = StreamConfig(
            seed=5, rate=1000, duration=10, max_changes=150, reject_share=0.2, concurrent_share=0.1
        )
        with run.fo_client() as fo, dataverse:
            summary = run_change_stream(fo, run.dataset, config, dataverse=dataverse)
            names = [a["name"] for a in dataverse.get("accounts", params={"$select": "name"}).json()["value"]]
            vendors = dataverse.get("msdyn_vendors", params={"$select": "msdyn_vendorname"}).json()["value"]
            names += [v["msdyn_vendorname"] for v in vendors]
        assert summary.failed == {}
        assert summary.made["dataverse.customer.create"] > 0
        assert summary.concurrent > 0
        assert summary.rejects["name_too_long"] == sum(len(name) > 100 for name in names) > 0
        assert summary.made["dataverse.vendor.update"] + summary.made["dataverse.vendor.create"] > 0
        assert summary.rejects["unknown_currency"] > 0
    finally:
        run.stop()


def test_run_sandbox_prints_credentials_and_stops_when_told() -> None:
    """run_sandbox prints URLs and client credentials, runs a bounded stream and returns once stopped."""
    lines: list[str] = []
    stop = threading.Event()
    result: dict[str, object] = {}

    def serve() -> None:
        stream = StreamConfig(seed=1, rate=200, duration=0.5, max_changes=20)
        result["summary"] = run_sandbox(
            customers=5, vendors=1, products=1, stream=stream, stop=stop, write=lines.append
        )

    thread = threading.Thread(target=serve)
    thread.start()
    deadline = time.monotonic() + 30
    while not any("stream" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    fo_url = next(line for line in lines if line.startswith("F&O twin")).split()[2]
    assert httpx.get(fo_url + "/CustomersV3").status_code == 401
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "workload / workload-secret" in "".join(lines)
    assert result["summary"] is not None
