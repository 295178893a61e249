"""A Dataverse table that is changing is read again sooner; the busy tables share a budget of extra reads."""

from __future__ import annotations

import pytest

from dualbus.producers.poll_pace import PollPace
from dualbus.producers.settings import ProducerOptions
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Origin
from dualbus.shared.maps import load_maps


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_table_that_published_changes_is_read_again_sooner_than_a_quiet_one() -> None:
    pace = PollPace(1.0, 0.25, 8.0, clock=_Clock())
    changing, quiet = pace.table(), pace.table()
    assert changing(12) == 0.25
    assert quiet(0) == 1.0


def test_a_table_stays_busy_for_a_while_after_its_last_change() -> None:
    clock = _Clock()
    after = PollPace(1.0, 0.25, 8.0, busy_for=2.0, clock=clock).table()
    assert after(3) == 0.25
    clock.now += 1.5
    assert after(0) == 0.25  # a burst's gap: still busy
    clock.now += 1.0
    assert after(0) == 1.0


def test_busy_tables_share_the_budget_evenly_and_never_wait_longer_than_the_interval() -> None:
    clock = _Clock()
    pace = PollPace(1.0, 0.25, 8.0, clock=clock)
    tables = [pace.table() for _ in range(6)]
    assert tables[0](1) == 0.25  # alone: 8 a second would allow more than 0.25 s gives
    tables[1](1)
    tables[2](1)
    assert tables[3](1) == pytest.approx(4 / 8)  # four busy tables: 2 reads a second each
    assert [t(1) for t in tables[4:]] == [pytest.approx(5 / 8), pytest.approx(6 / 8)]
    slow = PollPace(1.0, 0.25, 2.0, clock=clock)
    crowd = [slow.table() for _ in range(4)]
    assert [t(1) for t in crowd][-1] == 1.0  # 4 busy tables on 2 extra reads: the interval, not 2 s


def test_no_budget_or_a_busy_interval_no_shorter_keeps_every_table_on_the_interval() -> None:
    assert PollPace(1.0, 0.25, 0.0, clock=_Clock()).table()(5) == 1.0
    assert PollPace(0.5, 2.0, 8.0, clock=_Clock()).table()(5) == 0.5


def test_the_default_pace_keeps_every_dataverse_table_within_the_users_request_limit() -> None:
    """However many of the maps' Dataverse tables are busy, their reads stay under the 6,000 requests a
    user may make per web server in 5 minutes (api-limits), with room left for the reads that name a
    lookup's row."""
    options = ProducerOptions()
    tables = len(source_tables(load_maps(), Origin.DATAVERSE))
    assert tables >= 4  # the maps read several tables: the bound below is not met by having one
    limit_per_second = 6000 / 300
    for busy in range(tables + 1):
        pace = PollPace(
            options.poll_interval_seconds, options.busy_poll_interval_seconds, options.extra_polls_per_second
        )
        waits = [pace.table()(1) for _ in range(busy)]
        waits += [pace.table()(0) for _ in range(tables - busy)]
        # Each busy table keeps the wait it was given when it was read: the last one's is every one's now.
        waits[:busy] = [waits[busy - 1]] * busy if busy else []
        reads_per_second = sum(1 / wait for wait in waits)
        assert reads_per_second <= 0.9 * limit_per_second, (busy, reads_per_second)


def test_by_default_a_table_changed_every_few_seconds_stays_busy() -> None:
    clock = _Clock()
    after = PollPace(1.0, 0.25, 8.0, clock=clock).table()
    assert after(1) == 0.25
    for _ in range(3):
        clock.now += 4.0  # a change every 4 s, read in between as it stays busy
        assert after(0) == 0.25
        assert after(1) == 0.25
