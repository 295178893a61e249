"""The people the workload plays: several users of their own, so that a fast change stream does not spend
one user's Dataverse request limit, each edit recorded as the user who made it."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from dualbus.demo.environment import WORKLOAD_CLIENT, Endpoints
from dualbus.demo.errors import DemoError
from dualbus.demo.workload import DataSize, StreamThread
from dualbus.sandbox.fo import DEFAULT_CLIENTS, WORKLOAD_CLIENTS
from dualbus.sandbox.identity import user_id_for
from dualbus.sandbox.workload import StreamConfig, generate, plan_changes, start_sandbox

SIZE = DataSize(customers=20, vendors=4, products=2)
UNUSED_BUS = "Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=s"


def test_the_sandbox_registers_every_workload_user_and_the_demo_finds_them() -> None:
    """Every workload user has a client in the sandbox, none is dualbus's, and an older sandbox with only
    ``workload`` still gives the stream a user."""
    assert len(set(WORKLOAD_CLIENTS)) == len(WORKLOAD_CLIENTS) > 1
    assert WORKLOAD_CLIENTS[0] == WORKLOAD_CLIENT
    assert set(WORKLOAD_CLIENTS) <= set(DEFAULT_CLIENTS)
    assert not {"dualbus", "dualbus-producer"} & set(WORKLOAD_CLIENTS)
    endpoints = Endpoints(UNUSED_BUS, fo={}, dataverse={}, clients=DEFAULT_CLIENTS)
    assert endpoints.workload_clients == WORKLOAD_CLIENTS
    older = dataclasses.replace(endpoints, clients={"dualbus": "s", "workload": "s"})
    assert older.workload_clients == (WORKLOAD_CLIENT,)


def test_a_stream_for_a_user_the_sandbox_lacks_is_refused_before_it_starts() -> None:
    """A user that is no client of the sandbox's is named in a DemoError at once, not found missing on the
    stream's thread."""
    endpoints = Endpoints(UNUSED_BUS, fo={}, dataverse={}, clients={"dualbus": "s", "workload": "s"})
    with pytest.raises(DemoError, match=r"no client 'workload-9' .*\(it has: dualbus, workload\)"):
        StreamThread(endpoints, seed=1, size=SIZE, config=StreamConfig(seed=1), client_id="workload-9")


def test_a_stream_edits_dataverse_as_the_user_it_was_given() -> None:
    """A stream told to be ``workload-3`` makes its Dataverse edits as that user, not as ``workload``."""
    user = WORKLOAD_CLIENTS[2]
    run = start_sandbox(customers=SIZE.customers, vendors=SIZE.vendors, products=SIZE.products)
    try:
        endpoints = Endpoints.from_info(UNUSED_BUS, run.info())
        config = StreamConfig(
            seed=7,
            rate=200,
            duration=10,
            max_changes=40,
            reject_share=0.0,
            concurrent_share=0.0,
            dataverse_share=1.0,
            create_share=0.0,
            delete_share=0.0,
            vendor_share=0.0,
            person_share=0.0,
            contact_share=0.0,
        )
        stream = StreamThread(endpoints, seed=1, size=SIZE, config=config, client_id=user)
        stream.start()
        summary = stream.join(timeout=30)
        dataverse = run.dataverse_client()
        assert dataverse is not None
        with dataverse:
            rows = dataverse.get("accounts", params={"$select": "_modifiedby_value"}).json()["value"]
    finally:
        run.stop()
    assert summary.made == {"dataverse.customer.update": 40}
    assert not summary.failed
    dataset = generate(1, customers=SIZE.customers, vendors=SIZE.vendors, products=SIZE.products)
    edited = {change.record for change in plan_changes(dataset, config, dataverse=True)}
    editors = Counter(row["_modifiedby_value"] for row in rows)
    assert editors[user_id_for(user)] == len(edited) > 1
