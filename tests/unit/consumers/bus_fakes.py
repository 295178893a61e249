"""Stand-ins for an aio session receiver and its lock renewer, for unit tests of the consumer runtime.

Messages are the SDK's own ``ServiceBusMessage`` objects, built by ``shared.messages.to_message`` exactly as
a producer sends them; only the receiver around them is a stand-in, so that a test can say when a
settlement or a renewal fails. The contract and integration tests run the real SDK against the emulator.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import SessionLockLostError

from dualbus.consumers import (
    AdaptiveLimit,
    ApplyResult,
    ConsumerMetrics,
    MessageProcessor,
    MessageRetry,
    RuntimeOptions,
)
from dualbus.consumers._runtime import Consumer
from dualbus.consumers._tombstone_sink import TombstoneSink
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import TransientError
from dualbus.shared.maps import load_maps
from dualbus.shared.messages import to_message
from dualbus.shared.topology import Direction, SubscriptionSpec, TopicSpec

# A receive given less than this takes only what the receiver holds (the runtime's ``_HELD_ONLY``).
_WAITS = 1e-6

MAPS = load_maps()


def currency_message(
    code: str, version: int, *, operation: Operation = Operation.UPDATE, name: str | None = None
) -> ServiceBusMessage:
    """An F&O currency change as the producer sends it."""
    envelope = Envelope.for_change(
        origin=Origin.FO,
        area="currency",
        entity="Currencies",
        key={"CurrencyCode": code},
        operation=operation,
        source_version=version,
        time=datetime.now(UTC),
        data={} if operation is Operation.DELETE else {"Name": name or f"{code} v{version}"},
    )
    return to_message(envelope)


class RecordingSettler:
    """Records settlement calls by message id."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def complete_message(self, message):
        self.calls.append(("complete", str(message.message_id)))

    async def abandon_message(self, message):
        self.calls.append(("abandon", str(message.message_id)))

    async def dead_letter_message(self, message, **_details):
        self.calls.append(("dead-letter", str(message.message_id)))

    def lose(self, why):
        self.calls.append(("lose", why))


class FakeSession:
    """A session's id, lock time and state."""

    def __init__(self, session_id: str, state: bytes | None = None) -> None:
        self.session_id = session_id
        self.locked_until_utc: datetime | None = datetime.now(UTC) + timedelta(minutes=1)
        self.state = state
        self.saves = 0

    async def get_state(self) -> bytes | None:
        return self.state

    async def set_state(self, state: bytes | None) -> None:
        self.saves += 1
        self.state = state


class FakeReceiver:
    """Hands out one batch (then the ``later`` ones, one a receive), then nothing; completing ``lose_on``
    raises the SDK's SessionLockLostError."""

    def __init__(
        self,
        batch: list[ServiceBusMessage],
        session: FakeSession,
        lose_on: str | None = None,
        *,
        later: tuple[list[ServiceBusMessage], ...] = (),
    ):
        self.batches = [batch, *later]
        self.held: list[ServiceBusMessage] = []
        self.waits: list[float] = []  # how long each receive that waited was given
        self.asked: list[tuple[int, float]] = []  # each receive's count and wait
        self.session = session
        self.lose_on = lose_on
        self.settled: list[tuple[str, str]] = []
        self.opened = asyncio.Event()
        self.closed = False

    async def __aenter__(self) -> FakeReceiver:
        self.opened.set()
        return self

    async def receive_messages(
        self, *, max_message_count: int, max_wait_time: float
    ) -> list[ServiceBusMessage]:
        """Up to ``max_message_count`` of what the receiver holds; a receive that waits (not one that takes
        only what is held, as the runtime's ``_HELD_ONLY``) first brings the next batch, as a prefetch
        would while it read the connection."""
        self.asked.append((max_message_count, max_wait_time))
        if max_wait_time >= _WAITS:
            self.waits.append(max_wait_time)
            await asyncio.sleep(0.01)  # a real receive waits on the socket; this one must not spin the loop
            if not self.held and self.batches:
                self.held = self.batches.pop(0)
        taken, self.held = self.held[:max_message_count], self.held[max_message_count:]
        return taken

    async def complete_message(self, message) -> None:
        if message.message_id == self.lose_on:
            raise SessionLockLostError(message="the session lock was lost")
        self.settled.append(("complete", str(message.message_id)))

    async def abandon_message(self, message) -> None:
        self.settled.append(("abandon", str(message.message_id)))

    async def dead_letter_message(self, message, **_details) -> None:
        self.settled.append(("dead-letter", str(message.message_id)))

    async def close(self) -> None:
        self.closed = True


class NoSessionFree:
    """A receiver looking for a session while none is free: after ``looking`` s the SDK gives up."""

    def __init__(self, looking: float) -> None:
        self.looking = looking

    async def __aenter__(self) -> NoSessionFree:
        await asyncio.sleep(self.looking)
        raise TransientError("No session became available in time (OperationTimeoutError)")

    async def close(self) -> None:
        return None


class FakeClient:
    """Opens the given receivers in turn, then empty ones (or, ``others_free=False``, none comes)."""

    def __init__(self, *receivers: FakeReceiver, others_free: bool = True, looking: float = 0.02) -> None:
        self.waiting = list(receivers)
        self.opened: list[FakeReceiver] = []
        self.others_free = others_free
        self.looking = looking

    def get_subscription_receiver(self, *_: Any, **__: Any) -> FakeReceiver | NoSessionFree:
        if not self.waiting and not self.others_free:
            return NoSessionFree(self.looking)
        receiver = self.waiting.pop(0) if self.waiting else FakeReceiver([], FakeSession("empty"))
        self.opened.append(receiver)
        return receiver


class FakeRenewer:
    """Keeps every registration, so that a test can fail a renewal."""

    def __init__(self) -> None:
        self.registered: list[tuple[Any, Any]] = []
        self.registration = asyncio.Event()

    def register(self, _receiver, renewable, **options):
        self.registered.append((renewable, options.get("on_lock_renew_failure")))
        self.registration.set()

    async def close(self) -> None:
        return None


class TwinTable:
    """A sink over an in-memory table that keeps the stale guard as the real sinks do (``skip_reason``)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, object]] = {}
        self.writes: list[tuple[str, int]] = []
        self.started = asyncio.Event()
        self.hold_up: set[str] = set()  # keys whose apply waits until cancelled
        self.release = asyncio.Event()

    async def apply(self, change):
        from dualbus.consumers._sink import skip_reason  # noqa: PLC0415 - kept beside its one use

        key = str(change.key["isocurrencycode"])
        self.started.set()
        if key in self.hold_up:
            await self.release.wait()
        await asyncio.sleep(0)
        row = self.rows.get(key)
        done = skip_reason(change, row, "dualbus_sourceversion")
        if done is not None:
            return done
        if change.delete:
            del self.rows[key]
        else:
            if row is not None:
                await change.updating()  # as the real sinks do, before they write to a row that exists
            self.rows[key] = {"dualbus_sourceversion": change.source_version}
        self.writes.append((key, change.source_version))
        return ApplyResult.APPLIED

    async def aclose(self):
        return None


def currency_processor(table: TwinTable, metrics: ConsumerMetrics) -> MessageProcessor:
    """The processor of currency changes to Dataverse, applying to ``table`` through the tombstones."""
    return MessageProcessor(
        area="currency",
        direction=Direction.TO_DATAVERSE,
        maps=MAPS,
        sink=TombstoneSink(table, target="dataverse"),
        limit=AdaptiveLimit(8),
        retry=MessageRetry(budget_seconds=30.0),
        metrics=metrics,
    )


class Run:
    """A consumer over fake receivers and an in-memory target, run until a condition holds."""

    def __init__(
        self,
        *receivers: FakeReceiver,
        others_free: bool = True,
        buckets: int = 32,
        ready: asyncio.Event | None = None,
        **options: Any,
    ) -> None:
        """``options`` override the RuntimeOptions' fields (one worker, a 5 s shutdown deadline); the topic
        has ``buckets`` ordering buckets, so as many sessions."""
        self.client = FakeClient(*receivers, others_free=others_free)
        self.table = TwinTable()
        self.renewer = FakeRenewer()
        self.metrics = ConsumerMetrics(area="currency", direction="to-dataverse")
        processor = currency_processor(self.table, self.metrics)
        subscription = SubscriptionSpec(direction=Direction.TO_DATAVERSE)
        self.consumer = Consumer(
            cast(Any, self.client),
            processor,
            topic=TopicSpec(area="currency", subscriptions=(subscription,), ordering_buckets=buckets),
            subscription=subscription,
            # A short idle wait: the fake's looks return at once, so a dry session is let go after
            # idle_wait / kept_look of them (the default's 5 s took 100).
            options=RuntimeOptions(
                **{"concurrency": 1, "shutdown_deadline": 5.0, "idle_wait": 0.5, **options}
            ),
            renewer=self.renewer,
            ready=ready,
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.consumer.run(self.stop))

    async def until(self, condition) -> None:
        """Wait (boundedly) for ``condition``, then stop the consumer."""
        for _ in range(500):
            if condition():
                break
            await asyncio.sleep(0.01)
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=10)
        assert condition()
