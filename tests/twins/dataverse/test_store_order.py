"""The store's rows come in primary-id order however rows come and go (the order is kept, not re-sorted)."""

from __future__ import annotations

import random
import uuid

import pytest

from dualbus.sandbox.dataverse.store import Store
from dualbus.sandbox.dataverse.tables import TABLES

ACCOUNTS = "accounts"


def _ids(store: Store) -> list[str]:
    return [row["accountid"] for row in store.rows(ACCOUNTS)]


def test_rows_stay_in_id_order_through_creates_deletes_and_undone_work() -> None:
    store = Store(TABLES)
    chooser = random.Random(7)
    live: set[str] = set()
    for step in range(300):
        if live and chooser.random() < 0.3:
            gone = chooser.choice(sorted(live))
            with store.transaction() as work:
                store.delete(work, ACCOUNTS, gone)
            live.discard(gone)
        else:
            row_id = str(uuid.UUID(int=chooser.getrandbits(128)))
            with store.transaction() as work:
                store.put(work, ACCOUNTS, {"accountid": row_id, "name": f"n{step}"})
            live.add(row_id)
        if step % 25 == 0:
            assert _ids(store) == sorted(live)
    # A unit of work that fails is undone entirely, its created row too.
    with pytest.raises(RuntimeError):
        _create_then_fail(store, "ffffffff-0000-0000-0000-000000000000")
    assert _ids(store) == sorted(live)


def _create_then_fail(store: Store, row_id: str) -> None:
    with store.transaction() as work:
        store.put(work, ACCOUNTS, {"accountid": row_id, "name": "undone"})
        raise RuntimeError("undo")


def test_count_and_pages_follow_creates_deletes_and_undone_work() -> None:
    """The count and any page by position agree with the whole ordered list, across chunk splits."""
    store = Store(TABLES)
    chooser = random.Random(11)
    live: set[str] = set()
    for step in range(5000):
        if live and chooser.random() < 0.2:
            gone = chooser.choice(sorted(live)) if step % 97 == 0 else live.pop()
            live.discard(gone)
            with store.transaction() as work:
                store.delete(work, ACCOUNTS, gone)
        else:
            row_id = str(uuid.UUID(int=chooser.getrandbits(128)))
            with store.transaction() as work:
                store.put(work, ACCOUNTS, {"accountid": row_id, "name": f"n{step}"})
            live.add(row_id)
    with pytest.raises(RuntimeError):
        _create_then_fail(store, "00000000-0000-0000-0000-000000000001")
    ordered = sorted(live)
    assert store.count(ACCOUNTS) == len(ordered) > 2000  # more than one chunk of ids
    for start, stop in [(0, 1), (0, 5000), (999, 1003), (1500, 2500), (len(ordered) - 3, len(ordered) + 9)]:
        assert [row["accountid"] for row in store.rows_between(ACCOUNTS, start, stop)] == ordered[start:stop]
    # Pages after a row id: from the start, across chunk ends, after an id not held, and past the end.
    for last, count in [(None, 3), (ordered[998], 5), (ordered[1500][:-1] + "0", 2000), (ordered[-2], 9)]:
        above = [i for i in ordered if last is None or i > last][:count]
        assert [row_id for row_id, _ in store.rows_after(ACCOUNTS, last, count)] == above
