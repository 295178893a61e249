"""With a SQLite path the F&O twin keeps its rows, RecIds and change sequence across a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.fo import FoStore, start_fo
from tests.twins.fo.conftest import KEY_PATH, Webhook, customer, seed_references


def test_rows_survive_a_restart(tmp_path: Path) -> None:
    """A row written before a restart reads back after it, with its ETag, and new writes continue."""
    database = tmp_path / "fo.sqlite"
    with start_fo(database=database) as first, first.client() as client:
        seed_references(client)
        assert client.post("/data/CustomersV3", json=customer("US-001")).status_code == 201
        client.patch(KEY_PATH, json={"CreditLimit": 7})
        etag = client.get(KEY_PATH).json()["@odata.etag"]
    with start_fo(database=database) as second, second.client("workload") as client:
        row = client.get(KEY_PATH, params={"cross-company": "true"}).json()
        assert row["CreditLimit"] == 7
        assert row["@odata.etag"] == etag
        assert "ModifiedBy" not in row
        assert client.post("/data/CustomersV3", json=customer("US-002")).status_code == 201
        assert second.twin.store.count("CustomersV3") == 2


def test_recids_survive_a_restart(tmp_path: Path, webhook: Webhook) -> None:
    """A row keeps its virtual-entity GUID across a restart, and a new row after it gets a new one."""
    database = tmp_path / "fo.sqlite"
    with start_fo(database=database) as first, first.client() as client:
        seed_references(client)
        first.twin.add_webhook(webhook.url, ["CustomersV3"])
        client.post("/data/CustomersV3", json=customer("US-001"))
        assert first.twin.events.flush(timeout=10)
    with start_fo(database=database) as second, second.client() as client:
        second.twin.add_webhook(webhook.url, ["CustomersV3"])
        client.patch(KEY_PATH, json={"CreditLimit": 1})
        client.post("/data/CustomersV3", json=customer("US-002"))
        assert second.twin.events.flush(timeout=10)
    ids = [event["PrimaryEntityId"] for event in webhook.received]
    assert ids[0] == ids[1] != ids[2]


def test_a_file_of_the_old_format_is_refused(tmp_path: Path) -> None:
    """A data file from before format 2 (rows with modified stamps) is refused with a message, not misread."""
    database = tmp_path / "fo.sqlite"
    with sqlite3.connect(database) as old:
        old.execute("CREATE TABLE rows (entity TEXT, key TEXT, data TEXT, PRIMARY KEY (entity, key))")
        old.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
    old.close()
    with pytest.raises(SandboxConfigError, match="older format"):
        FoStore(database)


def test_in_memory_by_default() -> None:
    """Without a database path two twins share nothing."""
    with start_fo() as first, first.client() as client:
        seed_references(client)
        client.post("/data/CustomersV3", json=customer("US-001"))
        assert first.twin.store.count("CustomersV3") == 1
    with start_fo() as second:
        assert second.twin.store.count("CustomersV3") == 0
