"""IdOrder keeps ids sorted through adds and discards, and its slices are a sorted list's slices."""

from __future__ import annotations

import random

from dualbus.sandbox.dataverse.id_order import IdOrder


def test_ids_stay_sorted_and_sliceable_through_splits_and_emptied_chunks() -> None:
    chooser = random.Random(3)
    order = IdOrder(f"{n:05d}" for n in range(0, 3000, 2))
    held = {f"{n:05d}" for n in range(0, 3000, 2)}
    for _ in range(6000):
        row_id = f"{chooser.randrange(9000):05d}"
        if row_id in held:
            order.discard(row_id)
            held.discard(row_id)
        else:
            order.add(row_id)
            held.add(row_id)
    # Empty the lowest ids entirely, so whole chunks go.
    for row_id in sorted(held)[:1500]:
        order.discard(row_id)
        held.discard(row_id)
    order.discard("not held")
    expected = sorted(held)
    assert list(order) == expected
    assert len(order) == len(expected)
    for start, stop in [(0, 0), (0, 1), (5, 2), (998, 1002), (0, len(expected)), (len(expected) - 1, 10**6)]:
        assert order.between(start, stop) == expected[start:stop]
