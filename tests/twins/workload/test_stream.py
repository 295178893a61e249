"""The live change stream: planned deterministically, two-way fields only, bounded in count and time."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from dualbus.d365 import fo_entities
from dualbus.sandbox.fo import FoHandle, start_fo
from dualbus.sandbox.workload import (
    KINDS,
    SHAPES,
    StreamConfig,
    generate,
    load_fo,
    plan_changes,
    run_change_stream,
    shape_row,
)
from dualbus.sandbox.workload.kinds import RecordRef
from dualbus.sandbox.workload.plan import PlannedChange
from dualbus.sandbox.workload.stream import StreamSummary, _Executor
from dualbus.shared.maps import load_maps

DATA = generate(9, customers=40, vendors=10, products=2)


@pytest.fixture
def fo_client() -> Iterator[tuple[FoHandle, httpx.Client]]:
    with start_fo() as fo, fo.client("workload") as client:
        load_fo(client, DATA)
        yield fo, client


def test_plan_is_deterministic() -> None:
    """One seed plans the same changes in the same order; another seed plans others."""
    config = StreamConfig(seed=3, rate=100, duration=2)
    first = plan_changes(DATA, config, dataverse=True)
    assert first == plan_changes(DATA, config, dataverse=True)
    assert first != plan_changes(DATA, StreamConfig(seed=4, rate=100, duration=2), dataverse=True)


def test_plan_mix_and_refusal_share() -> None:
    """Every kind and operation occurs, and about the configured share of changes are planted refusals."""
    config = StreamConfig(seed=1, rate=1000, duration=2, max_changes=2000, reject_share=0.2)
    plan = plan_changes(DATA, config, dataverse=True)
    refusals = Counter(c.reject for c in plan if c.reject)
    assert len(plan) == 2000
    assert 0.15 < sum(refusals.values()) / len(plan) < 0.25
    assert set(refusals) == {"email_too_long"}
    assert {c.op for c in plan} == {"create", "update", "delete", "concurrent"}
    assert {c.kind for c in plan} == {"customer", "person", "vendor", "contact"}
    assert not any(c.op == "delete" and c.kind == "vendor" for c in plan)


def test_no_change_of_a_record_follows_its_delete_on_either_side() -> None:
    """The pipeline carries a delete to the other side, so the plan changes a deleted record nowhere after
    it (such a change would fail, 404 from Dataverse and 400 from F&O, and count against the stream, not
    the pipeline)."""
    config = StreamConfig(seed=2, rate=1000, duration=3, max_changes=3000, reject_share=0.0)
    deleted: set[RecordRef] = set()
    sides: set[str] = set()
    for change in plan_changes(DATA, config, dataverse=True):
        assert change.record not in deleted, change
        if change.op == "delete":
            deleted.add(change.record)
            sides.add(change.side)
    assert sides == {"fo", "dataverse"}


def test_refusals_are_planted_where_the_other_side_refuses() -> None:
    """Long e-mails are customer creates in F&O; no change made in Dataverse is one (F&O now takes them)."""
    plan = plan_changes(DATA, StreamConfig(seed=2, rate=1000, duration=1, reject_share=0.5), dataverse=True)
    refused = [c for c in plan if c.reject]
    assert refused
    for change in refused:
        assert (change.reject, change.side, change.op, change.kind) == (
            "email_too_long",
            "fo",
            "create",
            "customer",
        )
        assert 100 < len(change.values["PrimaryContactEmail"]) <= 254
    assert any(c.side == "dataverse" for c in plan)


def test_updates_change_only_fields_both_sides_carry() -> None:
    """An update writes F&O fields of its entity, and on Dataverse only columns its map carries both ways."""
    maps = load_maps()
    plan = plan_changes(DATA, StreamConfig(seed=7, rate=1000, duration=1, reject_share=0), dataverse=True)
    for change in (c for c in plan if c.op in {"update", "concurrent"}):
        spec = KINDS[change.kind]
        two_way = {f.dataverse for f in maps[spec.shape].fields if f.direction.value == "two_way"}
        assert change.values
        assert (change.op == "update") != bool(change.other_values)
        for values in filter(None, (change.values, change.other_values)):
            assert set(values) <= set(fo_entities()[spec.fo_entity].fields)
            columns = shape_row(SHAPES[spec.shape], values, {}, create=False)
            assert columns, (change.kind, values)
            assert set(columns) <= two_way, (change.kind, values)


def test_stream_against_fo_counts_what_it_did(fo_client: tuple[FoHandle, httpx.Client]) -> None:
    """Every planned F&O change lands, each kind is counted, and refusal-bound rows carry the long e-mail."""
    fo, client = fo_client
    config = StreamConfig(seed=2, rate=500, duration=5, max_changes=160, reject_share=0.25)
    summary = run_change_stream(client, DATA, config)
    assert (summary.planned, summary.total, summary.failed) == (160, 160, Counter())
    for kind in ("customer", "person", "vendor", "contact"):
        assert summary.made[f"fo.{kind}.create"] + summary.made[f"fo.{kind}.update"] > 0, kind
    long_emails = sum(
        len(r.get("PrimaryContactEmail") or "") > 100 for r in fo.twin.store.rows("CustomersV3")
    )
    assert long_emails == summary.rejects["email_too_long"] > 0


def test_stream_stops_at_its_deadline(fo_client: tuple[FoHandle, httpx.Client]) -> None:
    """A rate faster than the twin can take does not stretch the stream past its duration."""
    _, client = fo_client
    config = StreamConfig(seed=2, rate=20_000, duration=0.3, max_changes=6_000)
    started = time.monotonic()
    summary = run_change_stream(client, DATA, config)
    assert time.monotonic() - started < 2.0
    assert summary.planned == 6_000
    assert 0 < summary.total < summary.planned


def test_streams_in_lanes_never_change_the_same_record() -> None:
    """Streams over one dataset, each in a lane of its own, change disjoint records (new ones too)."""
    plans = [
        plan_changes(
            DATA,
            StreamConfig(seed=5, rate=500, duration=2, lane=lane, lanes=3, concurrent_share=0.0),
            dataverse=True,
        )
        for lane in range(3)
    ]
    records = [{(c.kind, c.record.company, c.record.fo_key) for c in plan} for plan in plans]
    assert all(records)
    for one, other in ((0, 1), (0, 2), (1, 2)):
        assert not records[one] & records[other]
    created = [{c.record for c in plan if c.op == "create"} for plan in plans]
    assert all(created)
    # The same seed without lanes plans creates of the keys every lane would make first: they collide.
    alone = [plan_changes(DATA, StreamConfig(seed=s, rate=500, duration=2), dataverse=True) for s in (5, 6)]
    first = [{c.record.fo_key for c in plan if c.op == "create"} for plan in alone]
    assert first[0] & first[1]


def test_streams_in_lanes_running_together_make_every_change(fo_client) -> None:
    """Three streams at once on one F&O twin, each in its lane: none of their changes is refused."""
    _fo, client = fo_client
    summaries = [
        run_change_stream(
            client,
            DATA,
            StreamConfig(
                seed=7 + lane, rate=1000, duration=1, max_changes=60, reject_share=0.0, lane=lane, lanes=3
            ),
        )
        for lane in range(3)
    ]
    assert [s.failed for s in summaries] == [Counter()] * 3
    assert [s.total for s in summaries] == [60] * 3


_USMF_ID = "11111111-1111-1111-1111-111111111111"


def test_a_dataverse_change_whose_company_read_is_refused_fails_and_the_next_reads_again() -> None:
    """Under Dataverse's limits the one read of its companies may be answered 429: that change is
    counted failed (the stream goes on, no crash), and the next Dataverse change asks again."""
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"})])
    asked: list[str] = []

    def dataverse(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("cdm_companies"):
            ids = {"value": [{"cdm_companycode": "USMF", "cdm_companyid": _USMF_ID}]}
            return next(answers, httpx.Response(200, json=ids))
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(dataverse), base_url="https://dv/api/data/v9.2/")
    executor = _Executor(httpx.Client(base_url="https://fo"), client)
    record = RecordRef(company="USMF", number="US-001", kind="customer", fo_key=("US-001",))
    change = PlannedChange(op="update", side="dataverse", record=record, values={"OrganizationName": "x"})
    summary = StreamSummary()
    executor.apply(change, summary)
    executor.apply(change, summary)
    assert summary.failed["dataverse.customer.update"] == 1
    assert summary.made["dataverse.customer.update"] == 1
    assert [a.split()[0] for a in asked] == ["GET", "GET", "PATCH"]
