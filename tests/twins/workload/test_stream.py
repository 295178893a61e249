"""The live change stream: planned deterministically, bounded in count and time, with a share of refusals."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from sandbox.fo import FoHandle, start_fo
from sandbox.workload import StreamConfig, generate, load_fo, plan_changes, run_change_stream

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


def test_plan_mix_and_rejection_share() -> None:
    """About the configured share of planned changes must be refused, of both kinds, plus concurrent edits."""
    config = StreamConfig(seed=1, rate=1000, duration=2, max_changes=2000, reject_share=0.2)
    plan = plan_changes(DATA, config, dataverse=True)
    kinds = Counter(c.reject for c in plan if c.reject)
    assert len(plan) == 2000
    assert 0.15 < sum(kinds.values()) / len(plan) < 0.25
    assert kinds["unknown_currency"] > 0
    assert kinds["name_too_long"] > 0
    assert {c.op for c in plan} == {"create", "update", "delete", "concurrent"}
    long_names = [
        c.values["OrganizationName" if c.kind == "customer" else "VendorOrganizationName"]
        for c in plan
        if c.reject == "name_too_long"
    ]
    assert all(100 < len(name) <= 160 for name in long_names)
    assert {c.kind for c in plan} == {"customer", "vendor"}


def test_stream_against_fo_counts_what_it_did(fo_client: tuple[FoHandle, httpx.Client]) -> None:
    """Every planned F&O change lands, each kind is counted, and refusal-bound rows carry the bad currency."""
    fo, client = fo_client
    config = StreamConfig(seed=2, rate=500, duration=5, max_changes=120, reject_share=0.25)
    summary = run_change_stream(client, DATA, config)
    assert summary.planned == 120
    assert summary.total == 120
    assert summary.failed == Counter()
    assert summary.made["fo.customer.create"] > 0
    assert summary.made["fo.customer.update"] > 0
    assert summary.made["fo.vendor.create"] + summary.made["fo.vendor.update"] > 0
    store = fo.twin.store
    bad_customers = sum(r["SalesCurrencyCode"] == "ZZZ" for r in store.rows("CustomersV3"))
    bad_vendors = sum(r["CurrencyCode"] == "ZZZ" for r in store.rows("VendorsV2"))
    assert bad_customers + bad_vendors == summary.rejects["unknown_currency"] > 0


def test_stream_stops_at_its_deadline(fo_client: tuple[FoHandle, httpx.Client]) -> None:
    """A rate faster than the twin can take does not stretch the stream past its duration."""
    _, client = fo_client
    config = StreamConfig(seed=2, rate=20_000, duration=0.3, max_changes=6_000)
    started = time.monotonic()
    summary = run_change_stream(client, DATA, config)
    assert time.monotonic() - started < 2.0
    assert summary.planned == 6_000
    assert 0 < summary.total < summary.planned
