"""With a SQLite path the F&O twin keeps its rows and its change sequence across a restart."""

from __future__ import annotations

from pathlib import Path

from sandbox.fo import start_fo
from tests.twins.fo.conftest import KEY_PATH, customer


def test_rows_survive_a_restart(tmp_path: Path) -> None:
    """A row written before a restart is read back after it, with its ModifiedBy, and new writes continue."""
    database = tmp_path / "fo.sqlite"
    with start_fo(database=database) as first, first.client() as client:
        assert client.post("/data/CustomersV3", json=customer("US-001")).status_code == 201
        client.patch(KEY_PATH, json={"CreditLimit": 7})
    with start_fo(database=database) as second, second.client("workload") as client:
        row = client.get(KEY_PATH, params={"cross-company": "true"}).json()
        assert row["CreditLimit"] == 7
        assert row["ModifiedBy"] == "dualbus"
        assert client.post("/data/CustomersV3", json=customer("US-002")).status_code == 201
        assert second.twin.store.count("CustomersV3") == 2


def test_in_memory_by_default() -> None:
    """Without a database path two twins share nothing."""
    with start_fo() as first, first.client() as client:
        client.post("/data/CustomersV3", json=customer("US-001"))
    with start_fo() as second:
        assert second.twin.store.count("CustomersV3") == 0
