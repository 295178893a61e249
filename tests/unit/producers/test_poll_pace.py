"""A Dataverse table that is changing is read again sooner, within a budget of extra reads a second."""

from __future__ import annotations

from dualbus.producers.poll_pace import PollPace


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_table_that_published_changes_is_read_again_sooner() -> None:
    pace = PollPace(1.0, 0.25, 4.0, clock=_Clock())
    assert pace.after(12) == 0.25
    assert pace.after(0) == 1.0


def test_early_reads_stop_when_the_budget_is_spent_and_resume_as_it_fills() -> None:
    clock = _Clock()
    pace = PollPace(1.0, 0.25, 4.0, clock=clock)
    assert [pace.after(1) for _ in range(5)] == [0.25] * 4 + [1.0]
    clock.now += 0.25  # one more token: 4 a second
    assert [pace.after(1) for _ in range(2)] == [0.25, 1.0]
    clock.now += 60.0  # the bucket holds one second's worth, however long it filled
    assert [pace.after(1) for _ in range(5)] == [0.25] * 4 + [1.0]


def test_no_budget_or_a_busy_interval_no_shorter_keeps_every_table_on_the_interval() -> None:
    assert PollPace(1.0, 0.25, 0.0, clock=_Clock()).after(5) == 1.0
    assert PollPace(0.5, 2.0, 4.0, clock=_Clock()).after(5) == 0.5


def test_a_budget_below_one_read_a_second_still_lets_one_through() -> None:
    clock = _Clock()
    pace = PollPace(1.0, 0.25, 0.5, clock=clock)
    assert [pace.after(1) for _ in range(2)] == [0.25, 1.0]
    clock.now += 2.0
    assert pace.after(1) == 0.25
