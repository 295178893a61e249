"""F&O data events kept durably as they arrive, and published from there in arrival order, many at a time.

F&O hands the webhook its data events one at a time, in commit order, each after the last was answered. If
the endpoint answered only once an event's row was read and published, F&O's changes would queue at F&O's
side behind one read and one publish each. So the webhook answers as soon as the event is kept in the
producer's own SQLite store (``CheckpointStore``, WAL, one transaction: a kill leaves it kept or not
taken, and F&O sends what was not taken again), and this inbox publishes what it holds in the background,
up to ``chunk`` events at a time (``FoEventHandler.handle``: each row read once, one publish), removing them
only once they are on Service Bus. A producer killed in between publishes them after its restart; rows
published twice that way hold the same values and are found unchanged by the consumers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.errors import InvalidDataEventError
from dualbus.producers.fo_events import FoDataEvent, parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.shared.errors import DualbusError
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy
from dualbus.shared.stopping import until_either

__all__ = ["FoEventInbox", "keep_event"]

_log = logging.getLogger(__name__)
_CHUNK = 100


class FoEventInbox:
    """Takes data events durably and publishes them through the handler, oldest first."""

    def __init__(
        self,
        store: CheckpointStore,
        handler: FoEventHandler,
        *,
        chunk: int = _CHUNK,
        retry: RetryPolicy = RECONNECT_RETRY,
    ) -> None:
        """``retry``: how long to wait before publishing again after a failure (Service Bus or F&O away)."""
        self._store = store
        self._handler = handler
        self._chunk = chunk
        self._retry = retry
        self._arrived = asyncio.Event()

    @property
    def entities(self) -> tuple[str, ...]:
        """The F&O entity sets whose events are published."""
        return self._handler.entities

    @property
    def store_path(self) -> Path:
        """The file the inbox is kept in, which a webhook in another process keeps events in too."""
        return self._store.path

    def take(self, body: bytes) -> FoDataEvent:
        """Keep one event (``keep_event``) and wake ``run``."""
        event = keep_event(self._store, body)
        self.arrived()
        return event

    def arrived(self) -> None:
        """Tell ``run`` that an event was kept; called on ``run``'s loop (the webhook process's words are
        read there)."""
        self._arrived.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish what the inbox holds, and what arrives, until ``stop``."""
        backoff = Backoff(self._retry, stop)
        while not stop.is_set():
            self._arrived.clear()
            try:
                published = await self._publish_oldest()
            except DualbusError as exc:
                # Service Bus or F&O away (or F&O answering nonsense), or the inbox's own store failing (a
                # full disk, a lock held past SQLite's wait): the events stay kept, in order, and are
                # published once this succeeds. Events published but not let go are published again, with
                # the same values, which the consumers find unchanged.
                _log.warning("data events not published yet, trying again after a backoff: %s", exc)
                await backoff.wait(exc)
                continue
            backoff.reset()
            if not published:
                await until_either(stop, self._arrived.wait())

    async def _publish_oldest(self) -> bool:
        """Publish the oldest kept events and let them go; False when the inbox holds none."""
        kept = self._store.inbox(self._chunk)
        if not kept:
            return False
        await self._handler.handle(_events(kept))
        self._store.remove_from_inbox(kept[-1][0])
        return True


def keep_event(store: CheckpointStore, body: bytes) -> FoDataEvent:
    """Check one event's body and keep it in ``store``'s inbox; InvalidDataEventError (or a JSON error) when
    it is no event, CheckpointError when it cannot be kept."""
    event = parse_data_event(orjson.loads(body))
    store.add_to_inbox(body)
    return event


def _events(kept: list[tuple[int, bytes]]) -> list[FoDataEvent]:
    events = []
    for seq, body in kept:
        try:
            events.append(parse_data_event(orjson.loads(body)))
        except (orjson.JSONDecodeError, InvalidDataEventError) as exc:
            # Checked when it was taken: only a store written by another version could hold one.
            _log.error("data event %d in the inbox is unreadable and is skipped: %s", seq, exc)
    return events
