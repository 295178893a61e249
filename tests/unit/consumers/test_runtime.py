"""The runtime's receiver loop with a fake Service Bus client: a closing receiver never holds up the next, and
a worker backs off after failed sessions (waits growing, starting over once a session worked, cut by stop)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

import pytest

from dualbus.consumers import RuntimeOptions
from dualbus.consumers._process import MessageProcessor
from dualbus.consumers._runtime import Consumer
from dualbus.shared.errors import ConfigError, TransientError
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import Direction, SubscriptionSpec, TopicSpec
from tests.unit.retry_waits import recorded_waits

# How long a test waits for the consumer's tasks to get somewhere before it fails.
_WITHIN = 5.0
# A shutdown deadline beyond the test's patience: only a wait cut short by stop ends run() in time.
_PAST_PATIENCE = 60.0


class _Receiver:
    """A receiver whose subscription is empty and whose close waits until the test lets it finish."""

    def __init__(self, release: asyncio.Event) -> None:
        self.release = release
        self.opened = asyncio.Event()
        self.received = asyncio.Event()
        self.closing = asyncio.Event()
        self.closed = False
        self.receives = 0

    async def __aenter__(self) -> _Receiver:
        self.opened.set()
        return self

    async def receive_messages(self, **_: Any) -> list[object]:
        self.receives += 1
        self.received.set()
        await asyncio.sleep(0.01)  # an empty subscription's receive wait, kept short
        return []

    async def close(self) -> None:
        # The SDK's close sits out its keep-alive task's sleep; here the test decides when it ends.
        self.closing.set()
        await self.release.wait()
        self.closed = True


class _Client:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.receivers: list[_Receiver] = []
        self._counts: dict[int, asyncio.Event] = {}

    def get_subscription_receiver(self, *_: Any, **__: Any) -> _Receiver:
        receiver = _Receiver(self.release)
        self.receivers.append(receiver)
        for count, reached in self._counts.items():
            if len(self.receivers) >= count:
                reached.set()
        return receiver

    async def handed_out(self, count: int) -> None:
        """Returns once the consumer has asked for ``count`` receivers."""
        reached = self._counts.setdefault(count, asyncio.Event())
        if len(self.receivers) >= count:
            reached.set()
        async with asyncio.timeout(_WITHIN):
            await reached.wait()


async def _each(events: Iterable[asyncio.Event]) -> None:
    """Returns once every event is set."""
    async with asyncio.timeout(_WITHIN):
        await asyncio.gather(*(event.wait() for event in events))


class _Unavailable:
    """A receiver that cannot open: the namespace unavailable, or (after ``looking``) no session came."""

    def __init__(self, looking: float = 0.0) -> None:
        self.looking = looking

    async def __aenter__(self) -> _Unavailable:
        await asyncio.sleep(self.looking)  # the SDK waiting for a session, as long as it is told to
        raise TransientError("Service Bus is unavailable: OperationTimeoutError")

    async def close(self) -> None:
        return None


class _FlakyClient(_Client):
    """Hands out receivers that fail to open where ``script`` says False, working (empty) ones elsewhere."""

    def __init__(self, script: list[bool], *, looking: float = 0.0) -> None:
        super().__init__()
        self.release.set()
        self.script = script
        self.looking = looking

    def get_subscription_receiver(self, *_: Any, **__: Any) -> Any:
        working = super().get_subscription_receiver()
        fails = len(self.receivers) <= len(self.script) and not self.script[len(self.receivers) - 1]
        return _Unavailable(self.looking) if fails else working


def _consumer(
    client: _Client, ready: asyncio.Event | None = None, *, buckets: int = 32, **options: Any
) -> Consumer:
    """A one-worker consumer of a sessionless subscription; ``options`` override RuntimeOptions' fields."""
    subscription = SubscriptionSpec(direction=Direction.TO_DATAVERSE, requires_session=False)
    topic = TopicSpec(area="currency", subscriptions=(subscription,), ordering_buckets=buckets)
    options = {"concurrency": 1, "shutdown_deadline": 5.0, **options}
    processor = cast(MessageProcessor, object())  # no message arrives, so nothing is processed
    return Consumer(
        cast(Any, client),
        processor,
        topic=topic,
        subscription=subscription,
        options=RuntimeOptions(**options),
        ready=ready,
    )


@pytest.mark.asyncio
async def test_the_next_receiver_opens_while_the_last_one_is_still_closing() -> None:
    """A worker takes its next receiver without waiting for the previous one's close to finish."""
    client = _Client()
    stop = asyncio.Event()
    running = asyncio.create_task(_consumer(client).run(stop))
    await client.handed_out(3)
    assert not any(receiver.closed for receiver in client.receivers)
    stop.set()
    client.release.set()
    await asyncio.wait_for(running, timeout=5)


@pytest.mark.asyncio
async def test_by_default_a_consumer_works_one_receiver_per_ordering_bucket_at_once() -> None:
    """Every busy session held at once, so that none waits for a worker to let another go."""
    client = _Client()
    client.release.set()
    stop = asyncio.Event()
    # Workers keep what they hold (an empty look is no reason to let go before the idle wait).
    consumer = _consumer(client, buckets=3, concurrency=None, idle_wait=_PAST_PATIENCE)
    running = asyncio.create_task(consumer.run(stop))
    await client.handed_out(3)
    await _each(receiver.received for receiver in client.receivers[:3])
    await asyncio.sleep(0.1)  # time for a fourth worker, were there one, to receive as well
    assert sum(receiver.receives > 0 for receiver in client.receivers) == 3
    stop.set()
    await asyncio.wait_for(running, timeout=_WITHIN)


@pytest.mark.asyncio
async def test_run_returns_only_after_every_receiver_is_closed() -> None:
    """Shutdown waits for the closes still in progress, so no connection outlives the consumer."""
    client = _Client()
    stop = asyncio.Event()
    running = asyncio.create_task(_consumer(client).run(stop))
    await client.handed_out(2)
    stop.set()
    # Every worker has stopped and handed its receiver to a close that cannot finish yet: run() must wait.
    await _each(receiver.closing for receiver in client.receivers)
    done, _ = await asyncio.wait({running}, timeout=0.1)
    assert not done
    client.release.set()
    await asyncio.wait_for(running, timeout=5)
    assert all(receiver.closed for receiver in client.receivers)


@pytest.mark.asyncio
async def test_closes_that_never_finish_hold_run_only_for_the_close_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker that stopped answering must not hold the consumer past its deadline and grace: run()
    returns, saying what it left, and the closes are cancelled."""
    client = _Client()  # its receivers' closes wait for a release that never comes
    stop = asyncio.Event()
    consumer = _consumer(client, shutdown_deadline=0.2, close_grace=0.3)
    running = asyncio.create_task(consumer.run(stop))
    await client.handed_out(2)
    stop.set()
    await asyncio.wait_for(running, timeout=_WITHIN)
    assert not any(receiver.closed for receiver in client.receivers)
    assert any(receiver.closing.is_set() for receiver in client.receivers)
    assert "closing the consumer's receivers took more than 0.3 s" in caplog.text
    await asyncio.sleep(0.05)  # the cancelled closes end at their next turn
    assert not consumer._closing


@pytest.mark.asyncio
async def test_no_message_is_received_before_the_runtime_is_ready() -> None:
    """Receivers may open before ``ready`` is set (the next session is taken ahead too), but none receives
    anything until then."""
    client = _Client()
    client.release.set()
    stop, ready = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(_consumer(client, ready).run(stop))
    await client.handed_out(1)
    await _each([client.receivers[0].opened])
    # Opened, and given the time a receive would take: still nothing received while ``ready`` is clear.
    await asyncio.wait({running}, timeout=0.1)
    assert [receiver.receives for receiver in client.receivers] == [0] * len(client.receivers)
    ready.set()
    await _each([client.receivers[0].received])
    stop.set()
    await asyncio.wait_for(running, timeout=5)


@pytest.mark.asyncio
async def test_waits_after_failed_sessions_grow_and_start_over_once_a_session_worked() -> None:
    """Failures in a row wait 1, 2, 4 ms (the policy's backoff); a worked session resets it to 1 ms."""
    client = _FlakyClient([False, False, False, True, False, False])
    reconnect = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.001, max_wait=0.004, jitter=0.0)
    stop = asyncio.Event()
    consumer = _consumer(client, reconnect=reconnect, shutdown_deadline=_PAST_PATIENCE)
    with recorded_waits() as waits:
        running = asyncio.create_task(consumer.run(stop))
        await client.handed_out(8)  # past the script: every later session works, with no wait between
        stop.set()
        await asyncio.wait_for(running, timeout=_WITHIN)
    assert waits == pytest.approx([0.001, 0.002, 0.004, 0.001, 0.002])


@pytest.mark.asyncio
async def test_stop_ends_a_reconnect_wait_at_once() -> None:
    """A worker waiting a minute to reconnect stops as soon as stop is set, not at the shutdown deadline."""
    client = _FlakyClient([False])
    reconnect = RetryPolicy(on=(Exception,), attempts=None, initial_wait=60.0, max_wait=60.0, jitter=0.0)
    stop = asyncio.Event()
    consumer = _consumer(client, reconnect=reconnect, shutdown_deadline=_PAST_PATIENCE)
    with recorded_waits() as waits:
        running = asyncio.create_task(consumer.run(stop))
        await asyncio.wait_for(waits.scheduled.wait(), _WITHIN)
        stop.set()
        await asyncio.wait_for(running, timeout=_WITHIN)
    assert waits == [60.0]
    assert len(client.receivers) == 1


@pytest.mark.asyncio
async def test_a_look_that_waited_in_vain_for_a_session_is_followed_by_the_next_at_once() -> None:
    """No session within ``session_wait`` is a quiet subscription, not a failure: no backoff follows."""
    client = _FlakyClient([False, False, False], looking=0.02)
    reconnect = RetryPolicy(on=(Exception,), attempts=None, initial_wait=60.0, max_wait=60.0, jitter=0.0)
    stop = asyncio.Event()
    consumer = _consumer(client, reconnect=reconnect, session_wait=0.01, shutdown_deadline=_PAST_PATIENCE)
    with recorded_waits() as waits:
        running = asyncio.create_task(consumer.run(stop))
        await client.handed_out(4)
        stop.set()
        await asyncio.wait_for(running, timeout=_WITHIN)
    assert waits == []


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"kept_look": 0.0}, "kept_look must be more than 0 seconds"),
        ({"close_grace": 0.0}, "close_grace must be more than 0 seconds"),
        ({"look_read_timeout": 0.0}, "look_read_timeout must be more than 0 seconds"),
        ({"read_timeout": -1.0}, "read_timeout must be more than 0 seconds"),
        ({"looks": 0}, "looks must be at least 1"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_runtime_options_that_would_spin_or_never_receive_are_refused_by_name(
    options: dict[str, float], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        RuntimeOptions(**options)
