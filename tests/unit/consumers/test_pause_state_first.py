"""A consumer receives nothing before it has read its route's pause state: a failed read is tried again
after a backoff, not taken for "running"."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from dualbus.consumers._app import _watch
from dualbus.shared.errors import TransientError
from dualbus.shared.prerequisites import PrerequisiteError
from dualbus.shared.retry import RetryPolicy

_TINY = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.001, max_wait=0.002, jitter=0.0)


class _FlakyWatcher:
    """A control queue that fails its first ``failures`` reads; ``run`` follows it until cancelled."""

    def __init__(self, failures: float) -> None:
        self.failures = failures
        self.polls = 0
        self.polled = asyncio.Event()
        self.following = asyncio.Event()

    async def poll_once(self) -> None:
        self.polls += 1
        self.polled.set()
        if self.polls <= self.failures:
            raise TransientError("the control queue did not answer")

    async def run(self) -> None:
        self.following.set()
        await asyncio.Event().wait()


async def _answered() -> None:
    """The target has dualbus's fields (consumers/_prepared.py)."""


async def _watched(
    watcher: _FlakyWatcher, known: asyncio.Event, prepared: asyncio.Task[None] | None = None
) -> asyncio.Task[None]:
    prepared = prepared or asyncio.create_task(_answered())
    return asyncio.create_task(_watch(cast(Any, watcher), known, prepared, retry=_TINY))


@pytest.mark.asyncio
async def test_the_state_is_known_only_once_a_read_succeeded():
    watcher, known = _FlakyWatcher(failures=3), asyncio.Event()
    task = await _watched(watcher, known)
    await asyncio.wait_for(watcher.following.wait(), 5)
    assert known.is_set()
    assert watcher.polls == 4
    task.cancel()


@pytest.mark.asyncio
async def test_while_the_control_queue_does_not_answer_nothing_is_received():
    """A replica started while its route is paused must not apply the backlog for want of a first read."""
    watcher, known = _FlakyWatcher(failures=float("inf")), asyncio.Event()
    task = await _watched(watcher, known)
    while watcher.polls < 5:
        watcher.polled.clear()
        await asyncio.wait_for(watcher.polled.wait(), 5)
    assert not known.is_set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_the_state_is_read_only_once_the_target_said_it_has_dualbuss_fields():
    """The target's answer (consumers/_prepared.py) comes first, so that the state read is fresh however long
    the target took; nothing is received before both are in."""
    watcher, known, answer = _FlakyWatcher(failures=0), asyncio.Event(), asyncio.Event()
    prepared = asyncio.create_task(answer.wait())
    task = await _watched(watcher, known, cast("asyncio.Task[None]", prepared))
    for _ in range(20):  # turns of the loop in which the watch would go on, were it not waiting
        await asyncio.sleep(0)
    assert (watcher.polls, known.is_set()) == (0, False)
    answer.set()
    await asyncio.wait_for(watcher.following.wait(), 5)
    assert (watcher.polls, known.is_set()) == (1, True)
    task.cancel()


@pytest.mark.asyncio
async def test_a_target_without_dualbuss_fields_leaves_the_state_unread_and_nothing_received():
    """A failed check ends the watch with its error; the consumer never starts receiving."""

    async def refused() -> None:
        raise PrerequisiteError("F&O is not prepared for dualbus: Currencies has no DualbusSourceVersion")

    watcher, known = _FlakyWatcher(failures=0), asyncio.Event()
    task = await _watched(watcher, known, asyncio.create_task(refused()))
    with pytest.raises(PrerequisiteError):
        await asyncio.wait_for(task, 5)
    assert (watcher.polls, known.is_set()) == (0, False)
