"""A consumer's look for the next free session ends after the wait it is given: the SDK does not retry it.

Left to its defaults, the SDK retries a look that found no session three times, sleeping between, and no
receiver waits at the broker while it sleeps; a change that comes in a free session meanwhile waits for the
next look. Its retries of the receiver's later calls stay (``shared.bus_calls.open_once``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable

import pytest

from dualbus.consumers._runtime import Consumer
from dualbus.shared.bus import async_bus_client
from dualbus.shared.bus_calls import close, complete, open_once, open_receiver, receive
from dualbus.shared.bus_types import AsyncBusClient, AsyncReceiver
from dualbus.shared.errors import TransientError
from dualbus.shared.topology import Direction

from .conftest import TEST_OPTIONS, TOPOLOGY
from .samples import event

pytestmark = pytest.mark.integration

WAIT = 0.2  # seconds a look waits for a session
# A look's handshake takes the SDK about half a second (it reads the frames 50 ms apart); one look is well
# within this, the SDK's four looks and three sleeps (0.8 + 1.6 + 3.2 s) well beyond.
ONE_LOOK_AT_MOST = 2.0
SDK_RETRIES_AT_LEAST = 5.0


def _receiver(client: AsyncBusClient, area: str, wait: float = WAIT) -> AsyncReceiver:
    """A receiver as the consumer of ``area`` towards Dataverse makes it, looking ``wait`` for a session."""
    topic = TOPOLOGY.topic(area)
    consumer = Consumer(
        client,
        processor=None,  # only its receivers are used
        topic=topic,
        subscription=topic.subscription(Direction.TO_DATAVERSE),
        options=dataclasses.replace(TEST_OPTIONS, session_wait=wait),
    )
    return consumer._receiver()


async def _empty_look(pipeline, opening: Callable[[AsyncReceiver], Awaitable[None]]) -> float:
    """Seconds ``opening`` took to give up a look at a subscription that holds nothing."""
    async with async_bus_client(pipeline.bus_settings) as client:
        receiver = _receiver(client, "company")
        started = time.monotonic()
        try:
            with pytest.raises(TransientError):
                await opening(receiver)
            return time.monotonic() - started
        finally:
            await close(receiver)


@pytest.mark.asyncio
async def test_a_look_that_finds_no_session_ends_after_its_wait(pipeline):
    took = await _empty_look(pipeline, open_once)
    assert WAIT <= took < ONE_LOOK_AT_MOST, took


@pytest.mark.asyncio
async def test_the_sdk_left_to_its_defaults_retries_the_look(pipeline):
    """Why the consumer opens once: the SDK's own open of the same receiver lasts many times as long
    (should an SDK release stop retrying it, this fails, and ``open_once`` is no longer needed)."""
    took = await _empty_look(pipeline, open_receiver)
    assert took >= SDK_RETRIES_AT_LEAST, took


@pytest.mark.asyncio
async def test_the_receiver_keeps_the_sdks_retries_for_what_follows_the_open(pipeline):
    """Settlements, session state and lock renewals are retried by the SDK as before: only the look was
    made once."""
    pipeline.publish([event(pipeline.maps["currency"], "fo", 1, version=1)])
    async with async_bus_client(pipeline.bus_settings) as client:
        receiver = _receiver(client, "currency")
        try:
            await open_once(receiver)
            assert receiver._config.retry_total == client._config.retry_total > 0
            got = await receive(receiver, max_count=10, max_wait=WAIT)
            assert len(got) == 1
            await complete(receiver, got)
        finally:
            await close(receiver)


def _read_timeouts(receiver: AsyncReceiver) -> tuple[float, float, float]:
    """The read timeouts the receiver's configuration, handler and connection hold now."""
    handler = receiver._handler
    return receiver._config.socket_timeout, handler._socket_timeout, handler._connection._socket_timeout


@pytest.mark.asyncio
async def test_a_look_waits_in_long_reads_and_the_session_is_received_in_short_ones(pipeline):
    """While a look waits for a session, its connection is read in long reads (an idle consumer's looks
    cost it ten turns of the SDK's opening loop a second each in short ones); once the session is taken,
    the receives read in the short ones again, and the session's message is there."""
    long_read = 0.7
    short_read = TEST_OPTIONS.read_timeout
    assert long_read != short_read
    async with async_bus_client(pipeline.bus_settings) as client:
        receiver = _receiver(client, "currency", wait=30.0)
        opening = asyncio.ensure_future(open_once(receiver, read_while_waiting=long_read))
        try:
            while getattr(receiver, "_handler", None) is None or receiver._handler._connection is None:
                assert not opening.done(), "the look ended before it waited"
                await asyncio.sleep(0.01)
            assert _read_timeouts(receiver) == (long_read, long_read, long_read)
            await asyncio.to_thread(pipeline.publish, [event(pipeline.maps["currency"], "fo", 2, version=1)])
            await asyncio.wait_for(opening, timeout=10)
            assert _read_timeouts(receiver) == (short_read, short_read, short_read)
            assert receiver._config.retry_total > 0
            got = await receive(receiver, max_count=10, max_wait=WAIT)
            assert len(got) == 1
            await complete(receiver, got)
        finally:
            opening.cancel()
            await close(receiver)


@pytest.mark.asyncio
async def test_a_look_that_found_no_session_gives_its_receiver_the_short_reads_back(pipeline):
    async with async_bus_client(pipeline.bus_settings) as client:
        receiver = _receiver(client, "company")
        try:
            with pytest.raises(TransientError):
                await open_once(receiver, read_while_waiting=0.7)
            assert receiver._config.socket_timeout == TEST_OPTIONS.read_timeout
            assert receiver._config.retry_total == client._config.retry_total
        finally:
            await close(receiver)
