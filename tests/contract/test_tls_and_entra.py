"""AMQP over TLS and Microsoft Entra ID tokens: the real SDK, a token credential, the emulator's CA.

``custom_endpoint_address`` (with ``TransportType.Amqp``) points the SDK's TLS client at the emulator's
ephemeral port (without it the SDK connects to 5671) and ``connection_verify`` at the sandbox CA; all are
the SDK's documented options.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.servicebus import ServiceBusClient, ServiceBusMessage, TransportType
from azure.servicebus.exceptions import ServiceBusError

from dualbus.sandbox.errors import SandboxAuthError
from dualbus.sandbox.identity import TokenIssuer
from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.sandbox.servicebus.sas import ENTRA_AUDIENCE, KeyRing

pytestmark = pytest.mark.contract

_QUEUE = "tls-queue"
_SCOPE = ENTRA_AUDIENCE + "/.default"


class _Token:
    """A token credential handing out one fixed token (what azure-identity would have fetched)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # noqa: ARG002 - the SDK's signature
        return AccessToken(self._token, int(time.time()) + 3600)


def _issuer() -> TokenIssuer:
    return TokenIssuer(signing_key=secrets.token_urlsafe(32), clients={"app": "secret"})


def _token(issuer: TokenIssuer, scope: str = _SCOPE) -> str:
    return str(issuer.issue(client_id="app", client_secret="secret", scope=scope)["access_token"])


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return _issuer()


@pytest.fixture(scope="module")
def emulator(issuer: TokenIssuer) -> Iterator[EmulatorThread]:
    config = EmulatorConfig(namespaces=[NamespaceConfig(name="tls", queues=[QueueConfig(name=_QUEUE)])])
    with start_in_process(config=config, entra=issuer) as handle:
        yield handle


def _client(emulator: EmulatorThread, token: str) -> ServiceBusClient:
    return ServiceBusClient(
        f"{emulator.host}:{emulator.port}",
        _Token(token),  # type: ignore[arg-type] # a TokenCredential by shape
        custom_endpoint_address=f"sb://{emulator.host}:{emulator.port}",
        transport_type=TransportType.Amqp,  # a custom endpoint otherwise means WebSockets
        connection_verify=str(emulator.server.tls.ca_bundle),
        retry_total=0,
    )


def test_a_verified_entra_token_sends_and_receives_over_tls(emulator: EmulatorThread, issuer: TokenIssuer):
    """A token from the sandbox issuer opens the queue over AMQP with TLS; the message goes round."""
    with _client(emulator, _token(issuer)) as client:
        with client.get_queue_sender(_QUEUE) as sender:
            sender.send_messages(ServiceBusMessage("over tls"))
        with client.get_queue_receiver(_QUEUE, max_wait_time=5) as receiver:
            received = receiver.receive_messages(max_wait_time=5)
            assert [str(m) for m in received] == ["over tls"]
            receiver.complete_message(received[0])


def test_a_token_signed_with_another_key_is_refused(emulator: EmulatorThread, caplog):
    """The signature is checked: a well-formed token from another issuer key does not open the queue."""
    caplog.set_level(logging.INFO, logger="dualbus.sandbox.servicebus.requests")
    client = _client(emulator, _token(_issuer()))
    with client, pytest.raises(ServiceBusError), client.get_queue_sender(_QUEUE) as sender:
        sender.send_messages(ServiceBusMessage("refused"))
    assert "Signature verification failed" in caplog.text


def test_a_token_for_another_audience_is_refused(issuer: TokenIssuer):
    """A token for another resource (here Dataverse's) is not a Service Bus token."""
    with pytest.raises(SandboxAuthError, match="audience"):
        KeyRing(entra=issuer).verify_entra(_token(issuer, "https://org.crm.dynamics.com/.default"))


def test_an_emulator_without_a_token_issuer_refuses_jwts(issuer: TokenIssuer):
    """Entra ID tokens are taken only when the emulator is given their issuer."""
    with pytest.raises(SandboxAuthError, match="no token issuer"):
        KeyRing().verify_entra(_token(issuer))


def test_an_expired_token_is_refused():
    """The expiry is checked."""
    issuer = _issuer()
    issuer.lifetime_seconds = -60
    with pytest.raises(SandboxAuthError, match="expired"):
        KeyRing(entra=_issuer_with_key(issuer)).verify_entra(_token(issuer))


def _issuer_with_key(issuer: TokenIssuer) -> TokenIssuer:
    return TokenIssuer(signing_key=issuer.signing_key, clients={})


def test_a_large_batch_goes_round_over_tls(emulator: EmulatorThread, issuer: TokenIssuer):
    """A batch near the size limit spans many TLS records; every byte reaches the broker and comes back."""
    bodies = [secrets.token_hex(20 * 1024) for _ in range(5)]  # 5 x 40 KiB of text
    with _client(emulator, _token(issuer)) as client:
        with client.get_queue_sender(_QUEUE) as sender:
            batch = sender.create_message_batch()
            for body in bodies:
                batch.add_message(ServiceBusMessage(body))
            sender.send_messages(batch)
        received: list[str] = []
        with client.get_queue_receiver(_QUEUE, max_wait_time=5) as receiver:
            while len(received) < len(bodies):
                messages = receiver.receive_messages(10, max_wait_time=5)
                assert messages, f"{len(received)} of {len(bodies)} messages came back"
                for message in messages:
                    received.append(str(message))
                    receiver.complete_message(message)
    assert received == bodies
