"""The SDK's AutoLockRenewer keeping several locks at once, sync and aio, as the published samples use it.

Renewing ten message locks together, the SDK sends its management requests from several threads (sync) or
tasks (aio) on one AMQP session, and they leave with repeated delivery-ids; the emulator takes them as
Azure's AMQP stack does (sandbox/servicebus/delivery_ids.py). Session locks are renewed alongside, each
session receiver on a connection of its own. Locks last LOCK seconds and are held for HOLD, so only
renewals can keep them: every message is completed after that, and every session still locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus import AutoLockRenewer, ServiceBusClient, ServiceBusMessage
from azure.servicebus.aio import AutoLockRenewer as AsyncAutoLockRenewer
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient

from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process

pytestmark = pytest.mark.contract

# The renewer renews a lock within 10 s of its end on each pass, or for a lock shorter than that within
# 3/4 of the whole seconds left when it was registered; its passes come every 0.5 s (sync) or 1 s (aio).
# Five seconds leaves the aio renewer a pass or two to spare (at three, it can step over its moment).
LOCK = timedelta(seconds=5)
HOLD_S = 8.0  # past the first locks' end: only renewals keep them
MESSAGES = 10  # as many as the sample registers at once
SESSIONS = 3


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    """Queues with short locks, one pair per test."""
    queues = [
        QueueConfig(name=name, lock_duration=LOCK, requires_session=name.endswith("sessions"))
        for name in ("renew-sync", "renew-sync-sessions", "renew-aio", "renew-aio-sessions")
    ]
    config = EmulatorConfig(namespaces=[NamespaceConfig(name="sbemulatorns", queues=queues)])
    with start_in_process(config=config) as handle:
        yield handle


def _messages(session_ids: list[str] | None = None) -> list[ServiceBusMessage]:
    if session_ids is not None:
        return [ServiceBusMessage(f"in {sid}", session_id=sid) for sid in session_ids]
    return [ServiceBusMessage(f"message {n}") for n in range(MESSAGES)]


def _still_locked(until: datetime | None) -> bool:
    return until is not None and until > datetime.now(UTC)


def test_sync_renewer_keeps_message_and_session_locks(emulator: EmulatorThread):
    """Ten message locks of one receiver and three session locks, renewed by one renewer's threads."""
    failures: list[object] = []
    sessions = [secrets.token_hex(4) for _ in range(SESSIONS)]
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(ServiceBusClient.from_connection_string(emulator.connection_string))
        with client.get_queue_sender("renew-sync") as sender:
            sender.send_messages(_messages())
        with client.get_queue_sender("renew-sync-sessions") as sender:
            sender.send_messages(_messages(sessions))
        renewer = AutoLockRenewer(on_lock_renew_failure=lambda _, e: failures.append(e))
        stack.callback(renewer.close)
        session_receivers = []
        for session in sessions:
            each = stack.enter_context(client.get_queue_receiver("renew-sync-sessions", session_id=session))
            renewer.register(each, each.session, max_lock_renewal_duration=60)
            session_receivers.append(each)
        receiver = stack.enter_context(client.get_queue_receiver("renew-sync", prefetch_count=MESSAGES))
        received = []
        while len(received) < MESSAGES:
            received += receiver.receive_messages(max_message_count=MESSAGES, max_wait_time=5)
        for message in received:
            renewer.register(receiver, message, max_lock_renewal_duration=60)
        time.sleep(HOLD_S)  # the locks' time running out is what is under test
        assert all(_still_locked(m.locked_until_utc) for m in received)
        for message in received:
            receiver.complete_message(message)
        for each in session_receivers:
            assert _still_locked(each.session.locked_until_utc)
            for message in each.receive_messages(max_wait_time=5):
                each.complete_message(message)
        renewer.close()  # before the receivers: a renewal cut short by a receiver's close counts as failed
    assert failures == []


@pytest.mark.asyncio
async def test_aio_renewer_keeps_message_and_session_locks(emulator: EmulatorThread):
    """The same with the aio renewer, whose renewals are tasks on one event loop."""
    failures: list[object] = []

    async def failed(_: object, error: Exception | None) -> None:
        failures.append(error)

    sessions = [secrets.token_hex(4) for _ in range(SESSIONS)]
    async with contextlib.AsyncExitStack() as stack:
        client = AsyncServiceBusClient.from_connection_string(emulator.connection_string)
        await stack.enter_async_context(client)
        async with client.get_queue_sender("renew-aio") as sender:
            await sender.send_messages(_messages())
        async with client.get_queue_sender("renew-aio-sessions") as sender:
            await sender.send_messages(_messages(sessions))
        renewer = AsyncAutoLockRenewer(on_lock_renew_failure=failed)
        stack.push_async_callback(renewer.close)
        session_receivers = []
        for session in sessions:
            each = client.get_queue_receiver("renew-aio-sessions", session_id=session)
            await stack.enter_async_context(each)
            renewer.register(each, each.session, max_lock_renewal_duration=60)
            session_receivers.append(each)
        receiver = client.get_queue_receiver("renew-aio", prefetch_count=MESSAGES)
        await stack.enter_async_context(receiver)
        received = []
        while len(received) < MESSAGES:
            received += await receiver.receive_messages(max_message_count=MESSAGES, max_wait_time=5)
        for message in received:
            renewer.register(receiver, message, max_lock_renewal_duration=60)
        await asyncio.sleep(HOLD_S)  # the locks' time running out is what is under test
        assert all(_still_locked(m.locked_until_utc) for m in received)
        for message in received:
            await receiver.complete_message(message)
        for each in session_receivers:
            assert _still_locked(each.session.locked_until_utc)
            for message in await each.receive_messages(max_wait_time=5):
                await each.complete_message(message)
        await renewer.close()  # before the receivers (as in the sync test)
    assert failures == []
