"""The SDK (sync and asyncio) against receivers of the wrong kind for their entity: a plain receiver on a
queue or subscription that requires sessions, a session receiver on one that does not, or on a dead-letter
sub-queue. Azure refuses each attach with ``amqp:not-allowed`` (sources in
``sandbox/servicebus/receiver_kinds.py``), which the SDK raises as ServiceBusError, itself and no subclass,
when the receiver opens: for a receive and for a peek alike. A dead-letter sub-queue takes plain receivers
even under a session entity."""

from __future__ import annotations

import pytest
from azure.servicebus import (
    NEXT_AVAILABLE_SESSION,
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusSubQueue,
)
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.exceptions import ServiceBusError

from dualbus.sandbox.servicebus.launcher import EmulatorThread

pytestmark = pytest.mark.contract

_SESSIONS_REQUIRED = "It is not possible for an entity that requires sessions to create a non-sessionful"
_SESSIONS_NOT_REQUIRED = "A sessionful message receiver cannot be created on an entity that does not require"
_SUB_QUEUE = "Cannot create a MessageSession for a sub-queue."


class BusEntity:
    """A queue, or a subscription of the ``receiver-kind`` topic: where to send, and where to receive."""

    def __init__(self, queue=None, subscription=None):
        self.queue = queue
        self.subscription = subscription

    def send(self, client, body, session_id):
        """Send one message of session ``session_id`` here (a subscription takes the subject naming it)."""
        if self.queue is not None:
            with client.get_queue_sender(self.queue) as sender:
                sender.send_messages(ServiceBusMessage(body, session_id=session_id))
            return
        with client.get_topic_sender("receiver-kind") as sender:
            sender.send_messages(ServiceBusMessage(body, session_id=session_id, subject=self.subscription))

    def receiver(self, client, **options):
        if self.queue is not None:
            return client.get_queue_receiver(self.queue, **options)
        return client.get_subscription_receiver("receiver-kind", self.subscription, **options)

    def dead_letter_path(self):
        """The dead-letter sub-queue named by its path, as a client that does not pass ``sub_queue`` does."""
        if self.queue is not None:
            return BusEntity(queue=f"{self.queue}/$deadletterqueue")
        return BusEntity(subscription=f"{self.subscription}/$deadletterqueue")

    def __repr__(self):
        return f"queue {self.queue}" if self.queue is not None else f"subscription {self.subscription}"


_SESSION_ENTITIES = [BusEntity(queue="receiver-kind-sessions"), BusEntity(subscription="sessions")]
_PLAIN_ENTITIES = [BusEntity(queue="receiver-kind-plain"), BusEntity(subscription="plain")]


def _receive(receiver):
    return receiver.receive_messages(max_wait_time=2)


def _peek(receiver):
    return receiver.peek_messages(max_message_count=5)


def _refusal(receiver, use) -> ServiceBusError:
    """The error ``use`` raised on a ``receiver`` not opened before (the SDK opens it for the call), failing
    the test if the call got through; the receiver is closed after."""
    try:
        with pytest.raises(ServiceBusError) as caught:
            pytest.fail(f"the broker let the receiver in, and it got {use(receiver)!r}")
    finally:
        receiver.close()
    return caught.value


@pytest.mark.parametrize("use", [_receive, _peek], ids=["receive", "peek"])
@pytest.mark.parametrize("entity", _SESSION_ENTITIES, ids=repr)
def test_a_plain_receiver_on_an_entity_that_requires_sessions_is_refused(
    client: ServiceBusClient, entity: BusEntity, use
):
    """A receiver without a session on a session queue or subscription is refused, for a receive and for a
    peek (the SDK attaches the receiver first): its message stays for a session receiver, untouched."""
    entity.send(client, "kept", session_id="s")
    error = _refusal(entity.receiver(client), use)
    assert type(error) is ServiceBusError
    assert _SESSIONS_REQUIRED in str(error)
    with entity.receiver(client, session_id="s") as receiver:
        [message] = receiver.receive_messages(max_wait_time=3)
        assert (str(message), message.delivery_count) == ("kept", 0)
        receiver.complete_message(message)


@pytest.mark.parametrize("session_id", ["s", NEXT_AVAILABLE_SESSION], ids=["by-id", "next-available"])
@pytest.mark.parametrize("entity", _PLAIN_ENTITIES, ids=repr)
def test_a_session_receiver_on_an_entity_without_sessions_is_refused(
    client: ServiceBusClient, entity: BusEntity, session_id: str
):
    """A session receiver, by id or next available, on a queue or subscription without sessions is refused,
    though a message of that session waits there: a plain receiver then gets it."""
    entity.send(client, "kept", session_id="s")
    error = _refusal(entity.receiver(client, session_id=session_id, max_wait_time=2), _receive)
    assert type(error) is ServiceBusError
    assert _SESSIONS_NOT_REQUIRED in str(error)
    with entity.receiver(client) as receiver:
        [message] = receiver.receive_messages(max_wait_time=3)
        assert (str(message), message.delivery_count) == ("kept", 0)
        receiver.complete_message(message)


@pytest.mark.parametrize("entity", _SESSION_ENTITIES, ids=repr)
def test_the_dead_letter_queue_of_a_session_entity_takes_plain_receivers_only(
    client: ServiceBusClient, entity: BusEntity
):
    """A session message dead-lettered on a session entity is read by a plain dead-letter receiver, peek and
    receive; a session receiver on the sub-queue (the SDK refuses ``sub_queue`` with ``session_id``, so by
    its path) is refused."""
    entity.send(client, "poison", session_id="s")
    with entity.receiver(client, session_id="s") as receiver:
        [message] = receiver.receive_messages(max_wait_time=3)
        receiver.dead_letter_message(message, reason="Broken")
    with entity.receiver(client, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
        assert [str(m) for m in dlq.peek_messages(max_message_count=5)] == ["poison"]
        [dead] = dlq.receive_messages(max_wait_time=3)
        assert (str(dead), dead.session_id, dead.dead_letter_reason) == ("poison", "s", "Broken")
        dlq.complete_message(dead)
    error = _refusal(entity.dead_letter_path().receiver(client, session_id="s", max_wait_time=2), _receive)
    assert type(error) is ServiceBusError
    assert _SUB_QUEUE in str(error)


@pytest.mark.asyncio
async def test_aio_receivers_of_the_wrong_kind_are_refused(emulator: EmulatorThread):
    """The asyncio SDK raises the same refusals: a plain receiver's peek on a session subscription (the
    peek opens the receiver), a session receiver on a subscription without sessions."""
    async with AsyncServiceBusClient.from_connection_string(emulator.connection_string) as client:
        plain = client.get_subscription_receiver("receiver-kind", "sessions")
        try:
            with pytest.raises(ServiceBusError) as caught:
                pytest.fail(f"got {await plain.peek_messages(max_message_count=5)!r}")
        finally:
            await plain.close()
        assert type(caught.value) is ServiceBusError
        assert _SESSIONS_REQUIRED in str(caught.value)
        session = client.get_subscription_receiver("receiver-kind", "plain", session_id="s", max_wait_time=2)
        with pytest.raises(ServiceBusError) as caught:
            async with session:
                pytest.fail(f"got {await session.receive_messages(max_wait_time=2)!r}")
        assert type(caught.value) is ServiceBusError
        assert _SESSIONS_NOT_REQUIRED in str(caught.value)
