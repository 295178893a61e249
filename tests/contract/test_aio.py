"""The asyncio SDK (``azure.servicebus.aio``) against the emulator: the same wire, another client."""

from __future__ import annotations

import pytest
from azure.servicebus import NEXT_AVAILABLE_SESSION, ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient

pytestmark = pytest.mark.contract


@pytest.mark.asyncio
async def test_aio_send_receive_complete(emulator):
    """An async sender's message reaches an async receiver with its properties, and completing removes it."""
    async with ServiceBusClient.from_connection_string(emulator.connection_string) as client:
        async with client.get_queue_sender("aio-basic") as sender:
            await sender.send_messages(ServiceBusMessage("async", application_properties={"n": 1}))
        async with client.get_queue_receiver("aio-basic") as receiver:
            [message] = await receiver.receive_messages(max_wait_time=5)
            assert str(message) == "async"
            assert message.application_properties == {b"n": 1}
            await receiver.complete_message(message)
            assert await receiver.peek_messages(max_message_count=5) == []


@pytest.mark.asyncio
async def test_aio_abandon_and_dead_letter(emulator):
    """Async abandon raises the delivery count and async dead-letter moves the message with its reason."""
    async with ServiceBusClient.from_connection_string(emulator.connection_string) as client:
        async with client.get_queue_sender("aio-settle") as sender:
            await sender.send_messages(ServiceBusMessage("x"))
        async with client.get_queue_receiver("aio-settle") as receiver:
            [first] = await receiver.receive_messages(max_wait_time=5)
            await receiver.abandon_message(first)
            [second] = await receiver.receive_messages(max_wait_time=5)
            assert second.delivery_count == 1
            await receiver.dead_letter_message(second, reason="Broken", error_description="async")
        async with client.get_queue_receiver("aio-settle", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            [dead] = await dlq.receive_messages(max_wait_time=5)
            assert (dead.dead_letter_reason, dead.dead_letter_error_description) == ("Broken", "async")
            await dlq.complete_message(dead)


@pytest.mark.asyncio
async def test_aio_batch_and_iteration(emulator):
    """An async batch of twenty is received in full by iterating the async receiver."""
    async with ServiceBusClient.from_connection_string(emulator.connection_string) as client:
        async with client.get_queue_sender("aio-batch") as sender:
            batch = await sender.create_message_batch()
            for i in range(20):
                batch.add_message(ServiceBusMessage(f"m{i}"))
            await sender.send_messages(batch)
        seen = []
        async with client.get_queue_receiver("aio-batch", max_wait_time=3, prefetch_count=10) as receiver:
            async for message in receiver:
                seen.append(str(message))
                await receiver.complete_message(message)
                if len(seen) == 20:
                    break
        assert seen == [f"m{i}" for i in range(20)]


@pytest.mark.asyncio
async def test_aio_next_available_session(emulator):
    """The async client accepts the next available session and reads its state back."""
    async with ServiceBusClient.from_connection_string(emulator.connection_string) as client:
        async with client.get_queue_sender("aio-sessions") as sender:
            await sender.send_messages(ServiceBusMessage("s", session_id="async-session"))
        async with client.get_queue_receiver(
            "aio-sessions", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=5
        ) as receiver:
            assert receiver.session.session_id == "async-session"
            await receiver.session.set_state(b"st")
            assert await receiver.session.get_state() == b"st"
            [message] = await receiver.receive_messages(max_wait_time=3)
            await receiver.complete_message(message)
