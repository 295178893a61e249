"""Seeding the twins, the planted refusals meeting the other side, and ``run_sandbox`` start to stop."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dualbus.sandbox.fo import start_fo
from dualbus.sandbox.workload import (
    SHAPES,
    SandboxRun,
    StreamConfig,
    company_ids,
    generate,
    load_dataverse,
    load_fo,
    plan_changes,
    run_change_stream,
    run_sandbox,
    shape_row,
    start_sandbox,
)


@pytest.fixture
def sandbox() -> Iterator[SandboxRun]:
    run = start_sandbox(customers=30, vendors=6, products=4)
    try:
        yield run
    finally:
        run.stop()


def _dataverse(run: SandboxRun) -> httpx.Client:
    client = run.dataverse_client()
    assert client is not None
    return client


def test_batch_load_creates_every_row_over_http() -> None:
    """Loading through $batch creates every generated row in the F&O twin, relations checked."""
    data = generate(11, customers=450, vendors=20, products=20)
    with start_fo() as fo, fo.client("workload") as client:
        created = load_fo(client, data, batch_size=200)
        count = client.get(
            "/data/CustomersV3", params={"cross-company": "true", "$count": "true", "$top": "1"}
        )
    assert created == data.count()
    assert count.json()["@odata.count"] == 450


def test_dataverse_load_waits_out_throttling() -> None:
    """A 429 with Retry-After is waited out and the batch sent again, so a throttled seed still completes."""
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, text="HTTP/1.1 204")]
    )
    transport = httpx.MockTransport(lambda _request: next(answers))
    with httpx.Client(transport=transport, base_url="http://dataverse.test/api/data/v9.2/") as client:
        assert load_dataverse(client, {"cdm_companies": [{"cdm_companycode": "USMF"}]}) == 1


def test_start_sandbox_seeds_both_twins(sandbox: SandboxRun) -> None:
    """Dataverse holds what an initial sync would: companies (fixed ids), accounts, contacts, products."""
    data = sandbox.dataset
    customers = data.rows["CustomersV3"]
    persons = sum(c["PartyType"] == "Person" for c in customers)
    with _dataverse(sandbox) as dataverse:
        companies = dataverse.get("cdm_companies").json()["value"]
        accounts = dataverse.get("accounts", params={"$select": "accountnumber"}).json()["value"]
        contacts = dataverse.get("contacts", params={"$select": "msdyn_contactpersonid"}).json()["value"]
        products = dataverse.get("products", params={"$select": "productnumber"}).json()["value"]
    assert {c["cdm_companycode"]: c["cdm_companyid"] for c in companies} == company_ids(data.companies)
    assert len(accounts) == len(customers) - persons
    assert len(contacts) == persons + len(data.rows["CDSContactPersonsV2"])
    assert len(products) == len(data.rows["CDSReleasedDistinctProducts"])
    assert sandbox.seeded["fo"] == data.count()


def test_planted_refusals_are_refused_by_the_other_side(sandbox: SandboxRun) -> None:
    """Each refusal is taken where it is made and refused by the other twin for the reason plan.py states."""
    plan = plan_changes(
        sandbox.dataset, StreamConfig(seed=8, rate=100, duration=1, reject_share=0.6), dataverse=True
    )
    long_email = next(c for c in plan if c.reject == "email_too_long")
    ids = company_ids(sandbox.dataset.companies)
    with sandbox.fo_client() as fo, _dataverse(sandbox) as dataverse:
        assert fo.post("/data/CustomersV3", json=long_email.values).status_code == 201
        account = dataverse.post("accounts", json=shape_row(SHAPES["customers"], long_email.values, ids))
    assert account.status_code == 400
    assert "emailaddress1" in account.json()["error"]["message"]


def test_stream_on_both_sides_plants_refusals(sandbox: SandboxRun) -> None:
    """A two-sided stream changes every kind on both twins, counts concurrent edits and its refusals."""
    config = StreamConfig(
        seed=5, rate=1000, duration=10, max_changes=300, reject_share=0.2, concurrent_share=0.1
    )
    with sandbox.fo_client() as fo, _dataverse(sandbox) as dataverse:
        summary = run_change_stream(fo, sandbox.dataset, config, dataverse=dataverse)
    assert summary.failed == {}
    assert summary.concurrent > 0
    for kind in ("customer", "person", "vendor", "contact"):
        assert summary.made[f"dataverse.{kind}.create"] + summary.made[f"dataverse.{kind}.update"] > 0, kind
    assert summary.rejects["email_too_long"] > 0


def test_run_sandbox_prints_credentials_and_stops_when_told(tmp_path: Path) -> None:
    """run_sandbox (``dualbus sandbox``'s flow) prints URLs and credentials, writes them as JSON, runs a
    bounded stream and returns once stopped."""
    info_file = tmp_path / "sandbox.json"
    lines: list[str] = []
    streamed, stop = threading.Event(), threading.Event()
    result: dict[str, object] = {}

    def write(text: str) -> None:
        lines.append(text)
        if text.startswith("stream"):
            streamed.set()

    def serve() -> None:
        stream = StreamConfig(seed=1, rate=200, duration=0.5, max_changes=20)
        result["summary"] = run_sandbox(
            customers=5, vendors=1, products=1, info_file=info_file, stream=stream, stop=stop, write=write
        )

    thread = threading.Thread(target=serve)
    thread.start()
    assert streamed.wait(timeout=60)
    fo_url = next(line for line in "".join(lines).splitlines() if line.startswith("F&O twin")).split()[2]
    assert httpx.get(fo_url + "/CustomersV3").status_code == 401
    info = json.loads(info_file.read_text())
    assert info["fo"]["url"] + "/data" == fo_url
    assert info["dataverse"]["api_url"].startswith("http://127.0.0.1:")
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "workload / workload-secret" in "".join(lines)
    assert result["summary"] is not None
