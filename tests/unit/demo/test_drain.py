"""When the demo considers the pipeline drained."""

from __future__ import annotations

from dualbus.demo.drain import DrainWatch
from dualbus.demo.stats import RouteStats


def _row(published: int, applied: int) -> RouteStats:
    return RouteStats("customer", "to-fo", published=published, outcomes={"applied": applied})


def test_settled_and_still_for_the_quiet_spell_is_drained() -> None:
    """Nothing moving for the quiet spell with every message settled ends the wait."""
    watch = DrainWatch(quiet=2.0, long_quiet=10.0)
    assert not watch.observe(0.0, [_row(5, 5)])
    assert not watch.observe(1.0, [_row(5, 5)])
    assert watch.observe(2.5, [_row(5, 5)])


def test_any_movement_restarts_the_quiet_spell() -> None:
    """A figure that changed means work is still going on, however long it was quiet before."""
    watch = DrainWatch(quiet=2.0, long_quiet=10.0)
    watch.observe(0.0, [_row(5, 4)])
    assert not watch.observe(3.0, [_row(5, 5)])
    assert not watch.observe(4.0, [_row(5, 5)])
    assert watch.observe(5.0, [_row(5, 5)])


def test_unsettled_messages_need_the_long_quiet_spell() -> None:
    """With messages unsettled (a dropped duplicate, a consumer backing off) only a long stillness ends it."""
    watch = DrainWatch(quiet=2.0, long_quiet=10.0)
    watch.observe(0.0, [_row(6, 5)])
    assert not watch.observe(5.0, [_row(6, 5)])
    assert watch.observe(10.0, [_row(6, 5)])


def test_retries_count_as_movement() -> None:
    """A consumer retrying a throttled write is not idle even when nothing settles."""
    watch = DrainWatch(quiet=2.0, long_quiet=10.0)
    row = _row(6, 5)
    watch.observe(0.0, [row])
    row.outcomes["retried"] = 1
    assert not watch.observe(9.0, [row])
    assert not watch.observe(18.0, [row])
    assert watch.observe(19.0, [row])
