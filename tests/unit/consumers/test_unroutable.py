"""The unroutable drain reopens its receiver after a failure, backing off through the retry policy: the waits
grow with the failures in a row and start over once a receive came back."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from dualbus.consumers._unroutable import UnroutableDrain
from dualbus.shared.errors import TransientError
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import Direction, SubscriptionSpec, TopicSpec
from tests.unit.retry_waits import recorded_waits

# How long a test waits for the drain to get somewhere before it fails.
_WITHIN = 5.0


class _Receiver:
    """An empty subscription's receiver: fails to open, or fails at its ``fail_on``-th receive."""

    def __init__(self, *, opens: bool = True, fail_on: int | None = None) -> None:
        self.opens = opens
        self.fail_on = fail_on
        self.receives = 0
        self.received = asyncio.Event()

    async def __aenter__(self) -> _Receiver:
        if not self.opens:
            raise TransientError("Service Bus is unavailable: ServiceBusConnectionError")
        return self

    async def receive_messages(self, **_: Any) -> list[object]:
        self.receives += 1
        if self.receives == self.fail_on:
            raise TransientError("Service Bus is unavailable: ServiceBusConnectionError")
        self.received.set()
        await asyncio.sleep(0.001)  # an empty subscription's receive wait, kept short
        return []

    async def close(self) -> None:
        return None


class _Client:
    def __init__(self, *receivers: _Receiver) -> None:
        self.receivers = list(receivers)

    def get_subscription_receiver(self, *_: Any, **__: Any) -> _Receiver:
        return self.receivers.pop(0)


@pytest.mark.asyncio
async def test_the_drain_reconnects_with_a_backoff_that_starts_over_after_a_receive():
    """Two failed opens wait 1 and 2 ms; a receiver that received before it failed waits 1 ms again."""
    last = _Receiver()
    client = _Client(_Receiver(opens=False), _Receiver(opens=False), _Receiver(fail_on=2), last)
    topic = TopicSpec(area="currency", subscriptions=(SubscriptionSpec(direction=Direction.TO_DATAVERSE),))
    reconnect = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.001, jitter=0.0)
    drain = UnroutableDrain(cast(Any, client), topic, wait=0.001, reconnect=reconnect)
    stop = asyncio.Event()
    with recorded_waits() as waits:
        running = asyncio.create_task(drain.run(stop))
        await asyncio.wait_for(last.received.wait(), _WITHIN)
        stop.set()
        await asyncio.wait_for(running, _WITHIN)
    assert waits == pytest.approx([0.001, 0.002, 0.001])
