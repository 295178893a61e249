"""The waits stamina schedules, recorded for a test: real ones (its testing mode off), in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import stamina
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

__all__ = ["Waits", "recorded_waits"]


class Waits(list[float]):
    """The seconds of each wait stamina scheduled; ``scheduled`` is set as each one begins."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = asyncio.Event()

    def __call__(self, details: RetryDetails) -> None:
        """stamina's on-retry hook: called just before it waits."""
        self.append(details.wait_for)
        self.scheduled.set()


@contextlib.contextmanager
def recorded_waits() -> Iterator[Waits]:
    """Record the waits instead of logging them, with stamina's testing mode off; restore both after."""
    waits = Waits()
    ours = get_on_retry_hooks()
    set_on_retry_hooks([waits])
    try:
        with stamina.set_testing(False):
            yield waits
    finally:
        set_on_retry_hooks(ours)
