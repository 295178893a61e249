"""Sessions taken ahead of the workers that will work them, at most one per worker.

Opening a session's receiver takes azure-servicebus about half a second whatever the broker: its open reads
the handshake's frames one at a time and sleeps 50 ms between them (``ServiceBusReceiver._open``, 7.x). A
worker that looked for its next session only after letting the last one go sat through that on every turn.
So the consumer's takers open sessions while the workers work, and a worker that lets one go finds the next
open. Any free worker works whichever session was taken first: a session taken ahead never waits behind a
worker busy with a long batch (a change retried until a lookup row comes, in that very session).

An empty supply also tells a worker that no other session is free: it may then keep its own after a short
batch, until it runs dry (``Consumer._drain``).

A topic has only so many sessions (its ordering buckets), so ``most`` caps the sessions being looked for,
waiting and being worked together. A look beyond them could only wait in vain, and each look is a connection
of its own that the SDK reads while it waits: with one worker per bucket, a consumer whose workers held most
sessions kept as many looks waiting as there were workers. And ``looks`` may cap the looks under way (see
``RuntimeOptions.looks`` for what they cost). A look that finds a session ends, and the next starts, so a
burst over many sessions is taken ``looks`` at a time, half a second apart (each open's handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from dualbus.shared.stopping import done_unless_stopped

__all__ = ["Supply"]

T = TypeVar("T")


class Supply(Generic[T]):
    """Taken sessions waiting for a worker, and the room left for taking more (``ahead`` at most)."""

    def __init__(
        self,
        *,
        ahead: int,
        release: Callable[[T], Awaitable[None]],
        most: int | None = None,
        looks: int | None = None,
    ) -> None:
        """``release`` lets a taken session go unworked (on pause or stop); a worker calls ``finished``
        when it let go of a session ``next`` gave it."""
        self._ready: asyncio.Queue[T] = asyncio.Queue()
        # Taken or being taken, not yet handed to a worker: a taker waits for room before it looks.
        self._room = asyncio.Semaphore(ahead)
        # Being taken, taken or being worked (None: no cap).
        self._slots = asyncio.BoundedSemaphore(most) if most is not None else None
        # Looks for a session under way (None: no cap).
        self._looks = asyncio.BoundedSemaphore(looks) if looks is not None else None
        self._release = release

    @property
    def empty(self) -> bool:
        """Whether no taken session is waiting for a worker."""
        return self._ready.empty()

    async def take_with(self, take: Callable[[], Awaitable[T | None]], stop: asyncio.Event) -> None:
        """Wait for room, then take one session with ``take`` (None: none came) and offer it; nothing when
        ``stop`` is set first."""
        async with contextlib.AsyncExitStack() as room:
            if not await _acquired_unless_stopped(self._room, stop):
                return
            room.callback(self._room.release)
            if self._slots is not None:
                if not await _acquired_unless_stopped(self._slots, stop):
                    return
                room.callback(self._slots.release)
            taken = await self._look(take, stop)
            if taken is None:
                return
            # The room is the taken session's until a worker gets it, its slot until it is let go.
            room.pop_all()
            self._ready.put_nowait(taken)

    async def _look(self, take: Callable[[], Awaitable[T | None]], stop: asyncio.Event) -> T | None:
        if self._looks is None:
            return await take()
        if not await _acquired_unless_stopped(self._looks, stop):
            return None
        try:
            return await take()
        finally:
            self._looks.release()

    async def next(self, stop: asyncio.Event) -> T | None:
        """The session taken first, once there is one; None when ``stop`` is set first."""
        getting = await done_unless_stopped(stop, self._ready.get())  # a session got meanwhile is kept
        if getting.cancelled():
            return None
        self._room.release()
        return getting.result()

    def finished(self) -> None:
        """A worker let go of a session ``next`` gave it: its slot is free for another look."""
        if self._slots is not None:
            self._slots.release()

    async def release_all(self) -> None:
        """Let every session waiting for a worker go (paused or stopping): their messages wait in order."""
        while not self._ready.empty():
            taken = self._ready.get_nowait()
            self._room.release()
            self.finished()
            await self._release(taken)


async def _acquired_unless_stopped(semaphore: asyncio.Semaphore, stop: asyncio.Event) -> bool:
    # An acquire that had its room already keeps it.
    return not (await done_unless_stopped(stop, semaphore.acquire())).cancelled()
