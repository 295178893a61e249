"""Waiting for the consumers: done once the areas' subscriptions hold nothing; a clear error on timeout."""

from __future__ import annotations

import pytest

from dualbus.ops import applied
from dualbus.ops.applied import wait_applied
from dualbus.shared.bus_admin import SubscriptionCounts
from dualbus.shared.errors import TransientError
from dualbus.shared.maps import area_layers, load_maps
from dualbus.shared.topology import Direction, default_topology


class DrainingCounts:
    """Each poll, every subscription holds one message fewer, down to zero."""

    def __init__(self, start: int) -> None:
        self.left = start
        self.asked: list[tuple[str, str]] = []

    def subscription(self, topic: str, subscription: str) -> SubscriptionCounts:
        self.asked.append((topic, subscription))
        return SubscriptionCounts(active=self.left, dead_lettered=0, accessed_at=None)

    def poll_done(self) -> None:
        self.left = max(0, self.left - 1)


def test_returns_once_the_subscriptions_are_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait ends when no message waits, after reporting the falling counts."""
    counts = DrainingCounts(start=2)
    monkeypatch.setattr(applied.time, "sleep", lambda _: counts.poll_done())
    seen: list[int] = []
    wait_applied(
        counts,  # type: ignore[arg-type]
        default_topology(),
        ["company", "currency"],
        Direction.TO_DATAVERSE,
        timeout=60,
        report=seen.append,
    )
    assert seen == [4, 2, 0]
    assert set(counts.asked) == {("dualbus.company", "to-dataverse"), ("dualbus.currency", "to-dataverse")}


def test_timeout_says_which_consumers_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """When nothing drains, the error names the subscriptions and asks whether the consumers run."""
    monkeypatch.setattr(applied.time, "sleep", lambda _: None)
    with pytest.raises(TransientError, match=r"dualbus\.company/to-dataverse.*consumers running"):
        wait_applied(
            DrainingCounts(start=5),  # type: ignore[arg-type]
            default_topology(),
            ["company"],
            Direction.TO_DATAVERSE,
            timeout=0,
        )


def test_layers_put_lookup_targets_first() -> None:
    """Companies and currencies come first; vendors after customers, whose payment terms they look up."""
    layers = area_layers(load_maps())
    assert layers[0] == ["company", "currency", "organisation"]
    assert layers[1] == ["customer", "product"]
    assert layers[2] == ["vendor"]
    assert area_layers(load_maps(), ["customer", "currency"]) == [["currency"], ["customer"]]
