"""A consumer receives nothing before it has read its route's pause state: a failed read is tried again
after a backoff, not taken for "running"."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from dualbus.consumers._app import _watch
from dualbus.shared.errors import TransientError
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


async def _watched(watcher: _FlakyWatcher, known: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(_watch(cast(Any, watcher), known, retry=_TINY))


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
