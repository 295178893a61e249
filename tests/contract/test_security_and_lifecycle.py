"""Keys, tokens and the in-process lifecycle: what the SDK sees when credentials are wrong or expired."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import MessagingEntityNotFoundError, ServiceBusAuthenticationError
from pydantic import SecretStr

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.launcher import start_in_process
from dualbus.sandbox.servicebus.sas import KEYS_ENV_VAR, make_token
from tests.contract.conftest import quick_client

pytestmark = pytest.mark.contract

_CONFIG = EmulatorConfig(namespaces=[NamespaceConfig(name="sbemulatorns", queues=[QueueConfig(name="q")])])


def test_configured_key_is_accepted_and_the_default_refused():
    """With a custom key, its connection string works and the documented default key is refused."""
    keys = {"app": SecretStr("s3cret-value")}
    with start_in_process(config=_CONFIG, keys=keys) as emulator:
        assert "SharedAccessKeyName=app;SharedAccessKey=s3cret-value" in emulator.connection_string
        with quick_client(emulator.connection_string) as client:
            with client.get_queue_sender("q") as sender:
                sender.send_messages(ServiceBusMessage("ok"))
            with client.get_queue_receiver("q") as receiver:
                assert [str(m) for m in receiver.receive_messages(max_wait_time=3)] == ["ok"]
        default = (
            f"Endpoint=sb://127.0.0.1:{emulator.port};SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
        )
        with (
            quick_client(default, retry_total=0) as client,
            pytest.raises(ServiceBusAuthenticationError),
            client.get_queue_sender("q") as sender,
        ):
            sender.send_messages(ServiceBusMessage("refused"))


def test_expired_signature_is_refused(emulator):
    """A shared access signature whose expiry has passed is refused with ServiceBusAuthenticationError."""
    resource = f"sb://127.0.0.1:{emulator.port}/props"
    token = make_token(resource, "RootManageSharedAccessKey", "SAS_KEY_VALUE", int(time.time()) - 60)
    conn = (
        f"Endpoint=sb://127.0.0.1:{emulator.port};SharedAccessSignature={token};UseDevelopmentEmulator=true"
    )
    with (
        quick_client(conn, retry_total=0) as client,
        pytest.raises(ServiceBusAuthenticationError),
        client.get_queue_sender("props") as sender,
    ):
        sender.send_messages(ServiceBusMessage("late"))


def _raw_resource_token(resource: str, key: str, expiry: int) -> str:
    """A token signed over the resource as written and carried raw in ``sr``, as the Python SDK's
    ``authenticate_using_azure_sas_credential`` sample makes it."""
    digest = hmac.new(key.encode(), f"{resource}\n{expiry}".encode(), hashlib.sha256).digest()
    signature = quote(base64.b64encode(digest))
    return f"SharedAccessSignature sr={resource}&sig={signature}&se={expiry}&skn=RootManageSharedAccessKey"


def test_token_signed_over_the_raw_resource_is_accepted(emulator):
    """Azure signs ``sr`` exactly as the token carries it: a raw ``sb://host/queue`` resource is accepted."""
    resource = f"sb://127.0.0.1:{emulator.port}/props"
    token = _raw_resource_token(resource, "SAS_KEY_VALUE", int(time.time()) + 300)
    conn = (
        f"Endpoint=sb://127.0.0.1:{emulator.port};SharedAccessSignature={token};UseDevelopmentEmulator=true"
    )
    with quick_client(conn, retry_total=0) as client, client.get_queue_sender("props") as sender:
        sender.send_messages(ServiceBusMessage("raw resource"))


def test_token_with_a_wrong_signature_is_refused(emulator):
    """A raw-resource token signed with another key is still refused."""
    resource = f"sb://127.0.0.1:{emulator.port}/props"
    token = _raw_resource_token(resource, "NOT_THE_KEY", int(time.time()) + 300)
    conn = (
        f"Endpoint=sb://127.0.0.1:{emulator.port};SharedAccessSignature={token};UseDevelopmentEmulator=true"
    )
    with (
        quick_client(conn, retry_total=0) as client,
        pytest.raises(ServiceBusAuthenticationError),
        client.get_queue_sender("props") as sender,
    ):
        sender.send_messages(ServiceBusMessage("forged"))


def test_keys_from_the_environment_replace_the_default(monkeypatch):
    """SERVICEBUS_EMULATOR_KEYS sets the emulator's keys; a malformed value is a configuration error."""
    monkeypatch.setenv(KEYS_ENV_VAR, "one=first-key; two=second=key")
    with start_in_process(config=_CONFIG) as emulator:
        assert "SharedAccessKeyName=one;SharedAccessKey=first-key" in emulator.connection_string
        other = emulator.connection_string.replace("=one;", "=two;").replace("first-key", "second=key")
        with quick_client(other) as client, client.get_queue_sender("q") as sender:
            sender.send_messages(ServiceBusMessage("via second key"))
    monkeypatch.setenv(KEYS_ENV_VAR, "no-equals-sign")
    with pytest.raises(SandboxConfigError):
        start_in_process(config=_CONFIG)


def test_receiver_on_unknown_entity_raises_not_found(client):
    """Receiving from a queue that does not exist raises MessagingEntityNotFoundError."""
    with pytest.raises(MessagingEntityNotFoundError), client.get_queue_receiver("missing-queue") as receiver:
        receiver.receive_messages(max_wait_time=2)


def test_in_process_emulator_persists_across_a_clean_restart(tmp_path):
    """An in-process emulator with a data directory keeps unsettled messages through stop and start."""
    with (
        start_in_process(config=_CONFIG, data_dir=tmp_path) as emulator,
        quick_client(emulator.connection_string) as client,
        client.get_queue_sender("q") as sender,
    ):
        sender.send_messages([ServiceBusMessage(f"p{i}") for i in range(3)])
    with (
        start_in_process(config=_CONFIG, data_dir=tmp_path) as emulator,
        quick_client(emulator.connection_string) as client,
        client.get_queue_receiver("q") as receiver,
    ):
        peeked = receiver.peek_messages(max_message_count=10)
    assert [str(m) for m in peeked] == ["p0", "p1", "p2"]
