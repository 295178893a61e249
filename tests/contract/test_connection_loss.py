"""A receiver whose process dies frees its session and message locks at once, as Azure does.

Each test runs a consumer-like child process (the real SDK, ``python -c``) that locks something and says so
on stdout, kills it with SIGKILL, and takes over what it held far sooner than the 60-second lock duration.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceivedMessage

from dualbus.sandbox.servicebus.config import (
    EmulatorConfig,
    NamespaceConfig,
    QueueConfig,
    SubscriptionConfig,
    TopicConfig,
)
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from tests.contract.conftest import quick_client

pytestmark = pytest.mark.contract

TOPIC = "orders"
_LOCK = timedelta(minutes=1)
_TAKE_OVER_S = 5.0  # the brief's bound, a twelfth of the lock duration
_CHILD_READY_S = 30.0

# The child receives (or receives deferred) one message, reports it, then blocks on stdin until killed.
_CHILD = """
import sys
from azure.servicebus import ServiceBusClient
connection, subscription, session, deferred = sys.argv[1:5]
client = ServiceBusClient.from_connection_string(connection)
receiver = client.get_subscription_receiver(
    "orders", subscription, session_id=session or None, max_wait_time=10
)
receiver.__enter__()
if deferred:
    messages = receiver.receive_deferred_messages([int(deferred)])
else:
    messages = receiver.receive_messages(max_message_count=1, max_wait_time=10)
print("locked", *[m.sequence_number for m in messages], flush=True)
sys.stdin.read()
"""


def _config() -> EmulatorConfig:
    subscriptions = [
        SubscriptionConfig(name="plain", lock_duration=_LOCK, max_delivery_count=5),
        SubscriptionConfig(name="ordered", lock_duration=_LOCK, max_delivery_count=5, requires_session=True),
    ]
    return EmulatorConfig(
        namespaces=[
            NamespaceConfig(
                name="sbemulatorns",
                queues=[QueueConfig(name="unused")],
                topics=[TopicConfig(name=TOPIC, subscriptions=subscriptions)],
            )
        ]
    )


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    """An in-process emulator with one topic: a plain and a session subscription, one-minute locks."""
    with start_in_process(config=_config()) as handle:
        yield handle


@pytest.fixture
def client(emulator: EmulatorThread) -> Iterator[ServiceBusClient]:
    """A sync SDK client for the emulator."""
    with quick_client(emulator.connection_string) as sb:
        yield sb


def _send(client: ServiceBusClient, body: str, session_id: str | None = None) -> None:
    with client.get_topic_sender(TOPIC) as sender:
        sender.send_messages(ServiceBusMessage(body, session_id=session_id))


def _lock_in_child_then_kill(
    emulator: EmulatorThread, subscription: str, session: str = "", deferred: int | None = None
) -> list[int]:
    """Run the child until it holds its lock, SIGKILL it, and return the sequence numbers it held."""
    argv = [emulator.connection_string, subscription, session, str(deferred or "")]
    child = subprocess.Popen(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, "-c", _CHILD, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        line = _line_within(child, _CHILD_READY_S)
    finally:
        child.kill()
        child.wait(timeout=10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
    words = line.split()
    assert words[:1] == [b"locked"], line
    return [int(word) for word in words[1:]]


def _line_within(child: subprocess.Popen[bytes], timeout: float) -> bytes:
    """The child's first line of output, or b"" if it printed none within ``timeout``."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    return child.stdout.readline() if ready else b""


def _receive_one(
    client: ServiceBusClient, subscription: str, session: str | None
) -> ServiceBusReceivedMessage:
    with client.get_subscription_receiver(
        TOPIC, subscription, session_id=session, max_wait_time=_TAKE_OVER_S
    ) as receiver:
        [message] = receiver.receive_messages(max_message_count=1, max_wait_time=_TAKE_OVER_S)
        receiver.complete_message(message)
        return message


def test_killed_session_receiver_frees_its_session_at_once(
    emulator: EmulatorThread, client: ServiceBusClient
) -> None:
    """After SIGKILL of the session's receiver, a new receiver accepts the session and gets its message."""
    _send(client, "first", session_id="s-1")
    held = _lock_in_child_then_kill(emulator, "ordered", session="s-1")
    started = time.monotonic()
    message = _receive_one(client, "ordered", "s-1")
    assert time.monotonic() - started < _TAKE_OVER_S
    assert (message.sequence_number, str(message)) == (held[0], "first")
    assert message.delivery_count == 1


def test_killed_receiver_returns_its_peek_locked_message_at_once(
    emulator: EmulatorThread, client: ServiceBusClient
) -> None:
    """After SIGKILL of a plain subscription's receiver, its locked message is delivered again at once."""
    _send(client, "plain one")
    held = _lock_in_child_then_kill(emulator, "plain")
    started = time.monotonic()
    message = _receive_one(client, "plain", None)
    assert time.monotonic() - started < _TAKE_OVER_S
    assert (message.sequence_number, str(message)) == (held[0], "plain one")
    assert message.delivery_count == 1


def test_killed_receiver_frees_a_deferred_message_it_locked(
    emulator: EmulatorThread, client: ServiceBusClient
) -> None:
    """A deferred message locked through $management by a killed process can be received again at once."""
    _send(client, "later")
    with client.get_subscription_receiver(TOPIC, "plain", max_wait_time=_TAKE_OVER_S) as receiver:
        [message] = receiver.receive_messages(max_message_count=1, max_wait_time=_TAKE_OVER_S)
        receiver.defer_message(message)
    seq = message.sequence_number
    assert seq is not None
    assert _lock_in_child_then_kill(emulator, "plain", deferred=seq) == [seq]
    with client.get_subscription_receiver(TOPIC, "plain") as receiver:
        [again] = receiver.receive_deferred_messages([seq])
        receiver.complete_message(again)
    assert again.delivery_count == 1


def test_closed_connection_returns_its_unsettled_message(
    client: ServiceBusClient, emulator: EmulatorThread
) -> None:
    """A client that closes without settling gives its locked message back at once, one delivery counted."""
    _send(client, "unsettled")
    with (
        quick_client(emulator.connection_string) as leaving,
        leaving.get_subscription_receiver(TOPIC, "plain", max_wait_time=_TAKE_OVER_S) as receiver,
    ):
        [held] = receiver.receive_messages(max_message_count=1, max_wait_time=_TAKE_OVER_S)
    message = _receive_one(client, "plain", None)
    assert (message.sequence_number, message.delivery_count) == (held.sequence_number, 1)
