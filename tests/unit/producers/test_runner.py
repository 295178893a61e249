"""The producer's run loop: rounds on the schedule; a failed round run again after a backoff, sooner than the
schedule, its waits growing with the failures in a row; the intake reconnecting after Service Bus failed."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from dualbus.producers import fo_queue
from dualbus.producers.checkpoints import CheckpointError, CheckpointStore
from dualbus.producers.errors import SourceError
from dualbus.producers.fo_queue import EventSource, FoQueueIntake
from dualbus.producers.runner import _every
from dualbus.shared.errors import TransientError
from dualbus.shared.retry import RetryPolicy
from tests.unit.retry_waits import recorded_waits

from .event_messages import currency_event_message

# How long a test waits for the loop to get somewhere before it fails.
_WITHIN = 5.0
# A schedule far beyond the test's patience: a round run within the test is a retry, not the schedule.
_HOUR = 3600.0
_TINY = RetryPolicy(on=(TransientError, SourceError), attempts=None, initial_wait=0.001, jitter=0.0)


class _Rounds:
    """A poll step failing as ``outcomes`` say (an error, or None for a round that went well)."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.runs = 0
        self.done = asyncio.Event()

    async def __call__(self) -> int:
        self.runs += 1
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if not self.outcomes:
            self.done.set()
        if outcome is not None:
            raise outcome
        return 0


async def _run_until_done(rounds: _Rounds, interval: float, retry: RetryPolicy) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(_every(interval, rounds, stop, retry=retry))
    await asyncio.wait_for(rounds.done.wait(), _WITHIN)
    stop.set()
    await asyncio.wait_for(running, _WITHIN)  # stop also ends the schedule's wait at once


@pytest.mark.asyncio
async def test_a_failed_round_runs_again_after_a_growing_backoff_not_the_schedule():
    """Failures in a row wait 1, 2, 4 ms before the next round, though the schedule says an hour."""
    rounds = _Rounds(TransientError("503"), SourceError("nonsense"), TransientError("503"), None)
    with recorded_waits() as waits:
        await _run_until_done(rounds, _HOUR, _TINY)
    assert rounds.runs == 4
    assert waits == pytest.approx([0.001, 0.002, 0.004])


@pytest.mark.asyncio
async def test_the_backoff_after_a_failed_round_starts_over_after_a_good_one():
    """After a round that went well, the next failure waits the first backoff again."""
    rounds = _Rounds(TransientError("503"), TransientError("503"), None, TransientError("503"), None)
    with recorded_waits() as waits:
        await _run_until_done(rounds, 0.05, _TINY)
    assert rounds.runs == 5
    assert waits == pytest.approx([0.001, 0.002, 0.001])


@pytest.mark.asyncio
async def test_a_stop_ends_a_round_under_way_without_waiting_for_its_retries():
    """A round stuck in its own retries (a source down) is cancelled when the producer is told to stop: the
    stop takes no longer than the cancel, and what the round read is read again after the restart."""
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck() -> int:
        started.set()
        try:
            await asyncio.sleep(_HOUR)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    stop = asyncio.Event()
    running = asyncio.create_task(_every(_HOUR, stuck, stop, retry=_TINY))
    await asyncio.wait_for(started.wait(), _WITHIN)
    stop.set()
    await asyncio.wait_for(running, _WITHIN)  # the round itself would go on for an hour
    assert cancelled.is_set()


@pytest.mark.asyncio
async def test_a_round_whose_checkpoint_store_was_busy_runs_again(tmp_path: Path):
    """Another process holding the store's file past the busy timeout fails the round, not the producer:
    the round runs again after a backoff and writes its checkpoint once the file is free."""
    path = tmp_path / "producer.sqlite3"
    store = CheckpointStore(path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    attempts: list[str] = []
    stop = asyncio.Event()

    async def checkpointing_round() -> int:
        try:
            store.put("dataverse.delta.accounts", "token-2")
        except CheckpointError as exc:
            attempts.append(type(exc).__name__)
            other.execute("ROLLBACK")  # the other process lets go
            raise
        attempts.append("written")
        stop.set()
        return 1

    try:
        await asyncio.wait_for(_every(_HOUR, checkpointing_round, stop, retry=_TINY), _WITHIN)
        assert attempts == ["CheckpointUnavailableError", "written"]
        assert store.get("dataverse.delta.accounts") == "token-2"
    finally:
        other.close()
        store.close()


@pytest.mark.asyncio
async def test_a_failed_round_never_waits_longer_than_the_schedule():
    """A backoff longer than the interval is capped at it: the next round is never later than scheduled."""
    rounds = _Rounds(TransientError("503"), None)
    slow = RetryPolicy(on=(TransientError,), attempts=None, initial_wait=60.0, jitter=0.0)
    with recorded_waits() as waits:
        await _run_until_done(rounds, 0.01, slow)
    assert waits == pytest.approx([0.01])


class _Receiver:
    """An empty queue's receiver; ``opened`` is set once it is open."""

    def __init__(self, fails: bool) -> None:
        self.fails = fails
        self.opened = asyncio.Event()

    async def __aenter__(self) -> _Receiver:
        if self.fails:
            raise TransientError("Service Bus is unavailable: ServiceBusConnectionError")
        self.opened.set()
        return self

    async def receive_messages(self, **_: Any) -> list[object]:
        await asyncio.sleep(0.01)  # an empty queue's receive wait, kept short
        return []

    async def close(self) -> None:
        return None


class _Client:
    def __init__(self, *fails: bool) -> None:
        self.receivers = [_Receiver(fail) for fail in fails]

    def get_queue_receiver(self, **_: Any) -> _Receiver:
        return self.receivers.pop(0)


@pytest.mark.asyncio
async def test_the_intake_reconnects_after_service_bus_failed():
    """A receiver failing to open is opened again after the policy's wait; the producer goes on."""
    client = _Client(True, True, False)
    working = client.receivers[-1]
    stop = asyncio.Event()
    reconnect = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.001, jitter=0.0)
    intake = FoQueueIntake(
        cast(Any, client), EventSource(queue="events"), cast(Any, None), reconnect=reconnect
    )
    with recorded_waits() as waits:
        running = asyncio.create_task(intake.run(stop))
        await asyncio.wait_for(working.opened.wait(), _WITHIN)
        stop.set()
        await asyncio.wait_for(running, _WITHIN)
    assert waits == pytest.approx([0.001, 0.002])


@pytest.mark.asyncio
async def test_rounds_start_an_interval_apart_whatever_each_round_took():
    """A round that takes most of the interval is followed by the next when the interval is up, not a whole
    interval after it ended."""
    starts: list[float] = []
    stop = asyncio.Event()

    async def slow_round() -> int:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) == 3:
            stop.set()
        await asyncio.sleep(0.3)  # the round's own reads and publishes
        return 0

    await asyncio.wait_for(_every(0.4, slow_round, stop, retry=_TINY), _WITHIN)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # An interval apart (0.4 s), where waiting a whole interval after each round would make 0.7 s.
    assert all(0.38 <= gap < 0.6 for gap in gaps), gaps


@pytest.mark.asyncio
async def test_a_pace_sets_when_the_next_round_starts_from_what_the_last_one_returned():
    """A round that published changes is followed after the pace's shorter wait; an empty one after the
    interval."""
    starts: list[float] = []
    stop = asyncio.Event()
    published = [3, 0, 0]

    async def round_() -> int:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) == len(published):
            stop.set()
        return published[len(starts) - 1]

    def pace(count: int) -> float:
        return 0.05 if count else 0.5

    await asyncio.wait_for(_every(0.5, round_, stop, retry=_TINY, pace=pace), _WITHIN)
    after_changes, after_none = (later - earlier for earlier, later in itertools.pairwise(starts))
    assert 0.04 <= after_changes < 0.3
    assert 0.45 <= after_none < 0.8


class _SameBatch:
    """A queue receiver that hands out the same one-message batch at every receive, noting settlements."""

    def __init__(self) -> None:
        self.message = currency_event_message()
        self.settled: list[str] = []

    async def __aenter__(self) -> _SameBatch:
        return self

    async def receive_messages(self, **_: Any) -> list[object]:
        await asyncio.sleep(0)
        return [self.message]

    async def abandon_message(self, _message: object) -> None:
        self.settled.append("abandon")

    async def complete_message(self, _message: object) -> None:
        self.settled.append("complete")

    async def close(self) -> None:
        return None


class _Handler:
    """Publishes after ``failures`` failed tries, each try taking ``seconds``; sets ``done`` then."""

    def __init__(self, failures: int, seconds: float = 0.0) -> None:
        self.failures = failures
        self.seconds = seconds
        self.tries = 0
        self.done = asyncio.Event()

    async def handle(self, events: list[object]) -> int:
        self.tries += 1
        await asyncio.sleep(self.seconds)
        if self.tries <= self.failures:
            raise TransientError("F&O answered 503")
        self.done.set()
        return len(events)


class _Renewer:
    """Notes what it is asked to keep renewed."""

    def __init__(self) -> None:
        self.registered: list[object] = []

    def register(self, _receiver: object, renewable: object, **_: Any) -> None:
        self.registered.append(renewable)

    async def close(self) -> None:
        return None


async def _intake_until_published(handler: _Handler, receiver: _SameBatch, monkeypatch: Any) -> _Renewer:
    renewer = _Renewer()
    monkeypatch.setattr(fo_queue, "lock_renewer", lambda _seconds: renewer)
    client = SimpleNamespace(get_queue_receiver=lambda **_: receiver)
    reconnect = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.001, jitter=0.0)
    intake = FoQueueIntake(
        cast(Any, client),
        EventSource(queue="events"),
        cast(Any, handler),
        reconnect=reconnect,
        unpublished=reconnect,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(intake.run(stop))
    await asyncio.wait_for(handler.done.wait(), _WITHIN)
    stop.set()
    await asyncio.wait_for(running, _WITHIN)
    return renewer


@pytest.mark.asyncio
async def test_a_batch_that_could_not_be_published_is_received_again_only_after_a_backoff(monkeypatch):
    """Each failed publish abandons the batch and waits a growing backoff before the next receive: every
    delivery counts towards the queue's MaxDeliveryCount, so it must not come round again at once."""
    receiver = _SameBatch()
    handler = _Handler(failures=3)
    with recorded_waits() as waits:
        await _intake_until_published(handler, receiver, monkeypatch)
    assert receiver.settled[:4] == ["abandon", "abandon", "abandon", "complete"]
    assert waits[:3] == pytest.approx([0.001, 0.002, 0.004])


@pytest.mark.asyncio
async def test_a_slow_publish_keeps_its_batch_locked_and_a_quick_one_renews_nothing(monkeypatch):
    """A publish still going after the renewal threshold has its messages' locks renewed until settled."""
    monkeypatch.setattr(fo_queue, "_RENEW_AFTER_SECONDS", 0.05)
    receiver = _SameBatch()
    quick = await _intake_until_published(_Handler(failures=0), receiver, monkeypatch)
    assert quick.registered == []
    batch = _SameBatch()
    slow = await _intake_until_published(_Handler(failures=0, seconds=0.2), batch, monkeypatch)
    assert slow.registered
    assert all(renewable is batch.message for renewable in slow.registered)
