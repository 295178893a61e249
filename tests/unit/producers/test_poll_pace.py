"""A Dataverse table that is changing is read again sooner; the busy tables share a budget of extra reads."""

from __future__ import annotations

import pytest

from dualbus.producers.poll_pace import PollPace


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
