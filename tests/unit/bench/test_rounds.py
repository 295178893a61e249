"""The consumer benchmark's arithmetic: the common steady window, rates over it, and the rounds' agreement."""

from __future__ import annotations

import pytest

from bench._rounds import drain_rate, rate_within, settled_at, spread, steady_window


def _even(count: int, start: float, step: float) -> list[float]:
    return [start + n * step for n in range(count)]


def test_the_window_starts_when_both_loops_are_past_their_start_and_ends_when_the_first_enters_its_tail():
    # One past a tenth of its messages settled at 1.0, all but a tenth at 8.9.
    early = _even(100, start=0.0, step=0.1)
    late = _even(100, start=2.0, step=0.1)  # the same at 3.0 and 10.9
    assert steady_window([early, late]) == pytest.approx((3.0, 8.9))


def test_loops_never_steady_at_once_have_no_window():
    assert steady_window([_even(100, 0.0, 0.01), _even(100, 50.0, 0.01)]) is None
    assert steady_window([_even(100, 0.0, 0.01), []]) is None


def test_the_rate_over_the_window_is_the_loops_own_pace_whatever_the_others():
    fast = _even(1000, start=0.0, step=0.001)  # 1000/s
    slow = _even(1000, start=0.0, step=0.002)  # 500/s
    window = steady_window([fast, slow])
    assert window is not None
    assert rate_within(fast, window) == pytest.approx(1000, rel=0.01)
    assert rate_within(slow, window) == pytest.approx(500, rel=0.01)


def test_a_burst_counts_as_work_spread_since_the_burst_before():
    # Bursts of 10 settled at once every second: halfway between two bursts, half the next one is done.
    times = [float(second) for second in range(1, 6) for _ in range(10)]
    assert settled_at(times, 2.0) == 20
    assert settled_at(times, 2.5) == pytest.approx(25)
    assert settled_at(times, 0.5) == 0
    assert settled_at(times, 9.0) == 50
    # A window whose edges fall between bursts gets the bursts' steady pace, not a whole burst more or less.
    assert rate_within(times, (1.9, 4.1)) == pytest.approx(10)


def test_within_the_first_burst_the_count_starts_from_nothing():
    times = [1.0, 1.0005, 1.001]
    assert settled_at(times, 1.0005) == pytest.approx(1.5)


def test_rounds_agree_when_every_ratio_lies_within_the_tolerance_of_their_median():
    agreeing = spread([0.95, 1.0, 1.05, 1.02, 0.98], tolerance=0.1)
    assert agreeing == {"median": 1.0, "low": -0.05, "high": 0.05, "tolerance": 0.1, "agree": True}
    scattered = spread([1.177, 0.955, 1.075, 1.01, 1.244], tolerance=0.1)
    assert scattered["median"] == 1.075
    assert scattered["low"] == pytest.approx(-0.112, abs=0.001)
    assert scattered["high"] == pytest.approx(0.157, abs=0.001)
    assert scattered["agree"] is False


def test_a_spread_without_tolerance_says_nothing_of_agreement():
    assert spread([2.0, 4.0, 3.0]) == {"median": 3.0, "low": -0.333, "high": 0.333}


def test_a_drain_rate_counts_from_the_common_start_to_the_last_message():
    assert drain_rate([1.0, 2.0, 3.0, 5.0], started=1.0) == pytest.approx(1.0)
    assert drain_rate([], started=1.0) == 0.0
