"""A held session's records worked across batches: each record's changes in order, others side by side.

A worker used to receive a session's next batch only once every message of the one before was settled, so a
change that came meanwhile waited for the slowest record of that batch (a request's pace turn, a retry's
wait) before it was even received. At 200 changes/s that wait was most of the slow changes' latency. The
queues take each batch as it comes instead: a message starts as soon as the messages of its own record
received before it are done, whatever batch they came in. Order among one record's changes is all a
session's order is kept for (``_groups``); a batch holding a batch body, whose records are not known before
it is read, waits for everything before it, and everything after waits for it.

An error in any record's work stops them all at once, as a lost hold does (``SessionHold.lose`` cancels the
tasks), and a message queued behind one that failed or was stopped never starts: the worker lets the session
go, and its unsettled messages come back to the next holder in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from dualbus.consumers._groups import EVERY_RECORD, record_groups
from dualbus.consumers._hold import SessionHold
from dualbus.shared.bus_types import ReceivedMessage

__all__ = ["RecordQueues"]

Work = Callable[[list[ReceivedMessage]], Coroutine[Any, Any, None]]


class RecordQueues:
    """The messages in hand of one held session, queued by record (one set per worker's turn at it)."""

    def __init__(self, hold: SessionHold, work: Work) -> None:
        """``work`` works one record's messages in order (and leaves them when the hold is lost or the
        consumer stops)."""
        self._hold = hold
        self._work = work
        self._tails: dict[str, asyncio.Task[None]] = {}  # each record's last work queued
        self._barrier: asyncio.Task[None] | None = None  # the last batch body's work, while it runs
        self._running: dict[asyncio.Task[None], tuple[str, int]] = {}  # work under way → record, messages
        self._in_hand = 0
        self._failure: BaseException | None = None  # the first error a record's work raised

    @property
    def in_hand(self) -> int:
        """The messages received and not yet done with."""
        return self._in_hand

    def add(self, messages: Sequence[ReceivedMessage]) -> None:
        """Queue a batch: each record's messages after those of the same record already in hand."""
        for record, group in record_groups(messages).items():
            if record == EVERY_RECORD:
                before = list(self._running)
                self._tails.clear()
            else:
                before = [t for t in (self._tails.get(record), self._barrier) if t is not None]
            task = self._hold.spawn(self._after(before, group))
            self._running[task] = (record, len(group))
            self._in_hand += len(group)
            task.add_done_callback(self._done)
            if record == EVERY_RECORD:
                self._barrier = task
            else:
                self._tails[record] = task

    @property
    def failure(self) -> BaseException | None:
        """The first error a record's work raised, if any has (the rest were stopped as it came)."""
        return self._failure

    async def one_done(self, within: float | None = None) -> bool:
        """Wait until some record's work is done, for at most ``within`` seconds; whether one was (False
        at once when none is under way)."""
        if not self._running:
            return False
        running = list(self._running)
        done, _ = await asyncio.wait(running, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)

    async def finish(self) -> None:
        """Wait for every message in hand; the first error raised stops the rest and is raised."""
        try:
            if self._running and self._failure is None:
                # A task's ``_done`` runs before this wait wakes (callbacks run in the order added), so
                # ``_failure`` holds the error by then.
                await asyncio.wait(list(self._running), return_when=asyncio.FIRST_EXCEPTION)
        finally:
            await self.cancel()
        if self._failure is not None:
            raise self._failure

    async def cancel(self) -> None:
        """Stop every record's work where it is (their messages are left unsettled) and wait for it."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _after(self, before: list[asyncio.Task[None]], group: list[ReceivedMessage]) -> None:
        if before:
            await asyncio.wait(before)
            # One before it that failed, or was stopped where it was (a lost hold, the shutdown deadline),
            # left its messages unsettled: these must not overtake them. The session goes, and its next
            # holder gets them all, in order. (One left by a stop ends normally: this one finds the stop too.)
            if self._failure is not None or any(t.cancelled() or t.exception() for t in before):
                return
        await self._work(group)

    def _done(self, task: asyncio.Task[None]) -> None:
        record, count = self._running.pop(task)
        self._in_hand -= count
        if self._tails.get(record) is task:
            del self._tails[record]
        if self._barrier is task:
            self._barrier = None
        if not task.cancelled() and self._failure is None and task.exception() is not None:
            self._failure = task.exception()
            # An error stops the session's work at once, not when the worker next looks (its receive may
            # be under way): no other record's message starts meanwhile.
            for other in list(self._running):
                other.cancel()
