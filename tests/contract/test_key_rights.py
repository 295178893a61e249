"""Keys with rights, as shared access authorization rules have: Send, Listen, Manage (which holds both).

Each operation needs the right Service Bus's table of "Rights required for Service Bus operations" names
(https://learn.microsoft.com/azure/service-bus-messaging/service-bus-sas); a key without it is refused with
ServiceBusAuthorizationError, the SDK's error for ``amqp:unauthorized-access``, naming the claim.
"""

from __future__ import annotations

import datetime

import pytest
from azure.core.exceptions import HttpResponseError
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusAuthorizationError
from azure.servicebus.management import ServiceBusAdministrationClient
from pydantic import SecretStr

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.sandbox.servicebus.sas import KEYS_ENV_VAR
from tests.contract.conftest import quick_client

pytestmark = [
    pytest.mark.contract,
    # The administration client is pointed at the emulator's own certificate without trusting it.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

_CONFIG = EmulatorConfig(
    namespaces=[NamespaceConfig(name="sbemulatorns", queues=[QueueConfig(name="q"), QueueConfig(name="s")])]
)
_KEYS = {
    "root": SecretStr("root-key"),
    "sender": SecretStr("send-key"),
    "listener": SecretStr("listen-key"),
    "both": SecretStr("send-listen-key"),
}
_RIGHTS = {"sender": {"Send"}, "listener": {"Listen"}, "both": {"Send", "Listen"}}


@pytest.fixture(scope="module")
def emulator():
    with start_in_process(config=_CONFIG, keys=_KEYS, key_rights=_RIGHTS) as handle:
        yield handle


def _as(emulator: EmulatorThread, name: str) -> str:
    """The emulator's connection string with key ``name``."""
    return (
        f"Endpoint=sb://127.0.0.1:{emulator.port};SharedAccessKeyName={name};"
        f"SharedAccessKey={_KEYS[name].get_secret_value()};UseDevelopmentEmulator=true"
    )


def test_a_send_only_key_sends_but_can_neither_receive_nor_schedule(emulator):
    """Scheduling needs Listen besides Send (https://github.com/MicrosoftDocs/azure-docs/issues/5999)."""
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    with quick_client(_as(emulator, "sender"), retry_total=0) as client:
        with client.get_queue_sender("q") as sender:
            sender.send_messages(ServiceBusMessage("from the sender"))
        with (
            pytest.raises(ServiceBusAuthorizationError, match="'Listen' claim"),
            client.get_queue_sender("q") as sender,
        ):
            sender.schedule_messages(ServiceBusMessage("later"), later)
        with (
            pytest.raises(ServiceBusAuthorizationError, match="'Listen' claim"),
            client.get_queue_receiver("q") as receiver,
        ):
            receiver.receive_messages(max_wait_time=2)
    with quick_client(_as(emulator, "both")) as client:
        with client.get_queue_sender("q") as sender:
            [number] = sender.schedule_messages(ServiceBusMessage("later"), later)
            sender.cancel_scheduled_messages(number)
        with client.get_queue_receiver("q") as receiver:
            [message] = receiver.receive_messages(max_wait_time=5)
            assert str(message) == "from the sender"
            receiver.complete_message(message)


def test_a_listen_only_key_receives_peeks_and_settles_but_cannot_send(emulator):
    with quick_client(_as(emulator, "root")) as client, client.get_queue_sender("s") as sender:
        sender.send_messages([ServiceBusMessage("one"), ServiceBusMessage("two")])
    with quick_client(_as(emulator, "listener"), retry_total=0) as client:
        with client.get_queue_receiver("s") as receiver:
            assert [str(m) for m in receiver.peek_messages(max_message_count=2)] == ["one", "two"]
            first, second = receiver.receive_messages(max_message_count=2, max_wait_time=5)
            receiver.renew_message_lock(first)
            receiver.complete_message(first)
            receiver.dead_letter_message(second, reason="checked")
        with (
            pytest.raises(ServiceBusAuthorizationError, match="'Send' claim"),
            client.get_queue_sender("s") as sender,
        ):
            sender.send_messages(ServiceBusMessage("refused"))


def test_rights_given_to_a_key_that_does_not_exist_are_refused():
    """A misspelt key name in the rights would leave the real key holding every right."""
    with pytest.raises(SandboxConfigError, match="Sender"):
        start_in_process(config=_CONFIG, keys=_KEYS, key_rights={"Sender": {"Send"}})


@pytest.mark.parametrize("name", ["sender", "listener"])
def test_administration_needs_manage(emulator, name):
    """Describing an entity is Manage; Send or Listen alone is refused, naming the claim."""
    with (
        ServiceBusAdministrationClient.from_connection_string(
            _as(emulator, name), connection_verify=False
        ) as admin,
        pytest.raises(HttpResponseError, match="'Manage' claim"),
    ):
        admin.get_queue("q")
    with ServiceBusAdministrationClient.from_connection_string(
        _as(emulator, "root"), connection_verify=False
    ) as admin:
        assert admin.get_queue("q").name == "q"


def test_rights_come_from_the_environment_in_brackets(monkeypatch):
    """``name[Listen,Send]=value`` gives a key those rights; a right Service Bus has not is refused."""
    monkeypatch.setenv(KEYS_ENV_VAR, "all=k1;reader[Listen]=k2")
    with start_in_process(config=_CONFIG) as emulator:
        assert emulator.server.key_rights == {"reader": frozenset({"Listen"})}
        reader = emulator.connection_string.replace("=all;", "=reader;").replace("=k1;", "=k2;")
        with (
            quick_client(reader, retry_total=0) as client,
            pytest.raises(ServiceBusAuthorizationError, match="'Send' claim"),
            client.get_queue_sender("q") as sender,
        ):
            sender.send_messages(ServiceBusMessage("refused"))
    monkeypatch.setenv(KEYS_ENV_VAR, "reader[Read]=k2")
    with pytest.raises(SandboxConfigError, match="Read"):
        start_in_process(config=_CONFIG)
