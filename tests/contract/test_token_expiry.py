"""A token's expiry ends the links it authorized, unless the client renews it on ``$cbs`` first.

"When a token expires, Service Bus promptly drops all links on the connection to the respective entity. To
prevent problem occurring, the client can replace the token for the node with a new one at any time through
the virtual *$cbs* management node with the same *put-token* gesture" (MicrosoftDocs/azure-docs
articles/service-bus-messaging/service-bus-amqp-protocol-guide.md, commit
9920c3abe95abd303c1be676c7837da318196b83).

The broker's clock is moved, not waited for. A token in the connection string (``SharedAccessSignature=``)
cannot be renewed by the SDK: Azure force-detaches its links, the SDK reconnects, and putting the token again
is refused. A key's token the SDK renews itself, by the wall clock (it signs each for an hour from
``time.time()`` and renews it once a tenth of that is left), which a moved broker clock cannot follow without
patching the SDK, which these tests never do: that a renewing put-token keeps a link is checked at the
broker's level (tests/unit/sandbox/test_emulator_link_tokens.py).
"""

from __future__ import annotations

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusAuthenticationError

from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, make_token
from tests.contract.conftest import MovedClock, QuickCloseClient, quick_client

pytestmark = pytest.mark.contract

TOKEN_LIFETIME_S = 600


def _fixed_token_connection(moved_clock: MovedClock) -> str:
    """A connection string carrying one namespace-wide token, valid for TOKEN_LIFETIME_S of broker time."""
    emulator = moved_clock.emulator
    namespace = f"sb://{emulator.host}:{emulator.port}"
    token = make_token(
        namespace, DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, int(moved_clock.clock()) + TOKEN_LIFETIME_S
    )
    return f"Endpoint={namespace};SharedAccessSignature={token};UseDevelopmentEmulator=true"


def _fixed_token_client(moved_clock: MovedClock) -> QuickCloseClient:
    """A client of that connection string allowed one quick retry: the reconnection after a dropped link."""
    return quick_client(_fixed_token_connection(moved_clock), retry_total=1, retry_backoff_factor=0.01)


def test_sender_with_an_expired_token_fails_to_authenticate(moved_clock: MovedClock):
    """A sender whose fixed token expired while its link was open cannot send again: the link is dropped
    and the SDK's reconnection is refused with ServiceBusAuthenticationError."""
    with (
        _fixed_token_client(moved_clock) as client,
        client.get_queue_sender("send-receive") as sender,
    ):
        sender.send_messages(ServiceBusMessage("before"))
        moved_clock.pass_time(TOKEN_LIFETIME_S + 1)
        with pytest.raises(ServiceBusAuthenticationError):
            sender.send_messages(ServiceBusMessage("after"))


def test_receiver_with_an_expired_token_fails_to_authenticate(moved_clock: MovedClock):
    """A receiver whose fixed token expired while its link was open receives nothing more: the link is
    dropped and the SDK's reconnection is refused with ServiceBusAuthenticationError."""
    with moved_clock.client.get_queue_sender("send-receive") as sender:
        sender.send_messages([ServiceBusMessage("first"), ServiceBusMessage("second")])
    with (
        _fixed_token_client(moved_clock) as client,
        client.get_queue_receiver("send-receive") as receiver,
    ):
        [first] = receiver.receive_messages(max_wait_time=3)
        receiver.complete_message(first)
        moved_clock.pass_time(TOKEN_LIFETIME_S + 1)
        with pytest.raises(ServiceBusAuthenticationError):
            receiver.receive_messages(max_wait_time=3)
