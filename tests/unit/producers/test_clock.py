"""The F&O producer's version clock: strictly increasing across its life, restarts and wall-clock steps."""

from __future__ import annotations

import time
from pathlib import Path

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import CLOCK_MARK, VersionClock, version_time
from dualbus.producers.fo_rows import FoBatch
from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Origin, time_problem
from dualbus.shared.maps import load_maps

CURRENCIES = SourceTable(load_maps()["currency"], Origin.FO)


class SteppingClock:
    """A wall clock that reads whatever the test sets."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_versions_follow_the_wall_clock_in_microseconds() -> None:
    """A version is the wall clock's reading in microseconds, and stands for that instant."""
    wall = SteppingClock(1_767_323_045_000_123)
    version = VersionClock(now=wall).next()
    assert version == 1_767_323_045_000_123
    assert version_time(version).isoformat() == "2026-01-02T03:04:05.000123+00:00"


def test_versions_strictly_increase_when_the_wall_clock_stands_still_or_steps_back() -> None:
    """Two readings in one microsecond, or after the clock stepped back, still increase."""
    wall = SteppingClock(1_000_000)
    clock = VersionClock(now=wall)
    first, second = clock.next(), clock.next()
    wall.now = 10
    third = clock.next()
    assert first < second < third


def test_versions_increase_across_a_restart_even_if_the_clock_stepped_back(tmp_path: Path) -> None:
    """A restarted producer whose wall clock went back an hour issues only versions above all earlier ones."""
    path = tmp_path / "producer-fo.sqlite3"
    wall = SteppingClock(5_000_000_000)
    with CheckpointStore(path) as store:
        clock = VersionClock(store, now=wall)
        issued = [clock.next() for _ in range(1000)]
    wall.now -= 3_600_000_000
    with CheckpointStore(path) as store:
        after = VersionClock(store, now=wall).next()
    assert after > max(issued)
    assert issued == sorted(set(issued))


def test_a_lease_costs_one_write_per_second_of_versions(tmp_path: Path) -> None:
    """Versions issued within one reserved second write the store once, not once each."""
    wall = SteppingClock(7_000_000)
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        clock = VersionClock(store, now=wall)
        for step in range(100):
            wall.now = 7_000_000 + step
            clock.next()
        reserved = store._all("SELECT value FROM marks WHERE name = ?", (CLOCK_MARK,))
    assert reserved == [(7_000_000 + 1_000_000,)]


def test_two_clocks_on_one_store_never_issue_the_same_version(tmp_path: Path) -> None:
    """A producer and a reconcile sharing a store draw from disjoint reservations."""
    wall = SteppingClock(9_000_000)
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        one, two = VersionClock(store, now=wall), VersionClock(store, now=wall)
        versions = [clock.next() for _ in range(50) for clock in (one, two)]
    assert len(set(versions)) == len(versions)


def test_a_change_published_after_the_clock_was_set_back_has_a_plausible_time(tmp_path: Path) -> None:
    """The host's clock ran three days fast and issued a version, then was put right: later versions stay
    above it (they only go up), but the time of the change they publish is now, not three days ahead,
    which consumers dead-lettered as implausible."""
    wall = SteppingClock(int(time.time() * 1_000_000) + 3 * 86_400 * 1_000_000)
    with CheckpointStore(tmp_path / "producer-fo.sqlite3") as store:
        VersionClock(store, now=wall).next()
        restarted = VersionClock(store)  # the right time now
        batch = FoBatch(restarted)
        batch.state(CURRENCIES, {"CurrencyCode": "EUR", "Name": "Euro"}, None, None)
    (envelope,) = batch.outbox.envelopes
    assert envelope.source_version > wall.now
    assert time_problem(envelope.time) is None
