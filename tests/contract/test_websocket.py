"""AMQP over WebSockets: the SDK's ``TransportType.AmqpOverWebsocket``, sync and aio, against the emulator.

Without a proxy the SDK opens ``wss://<host>/$servicebus/websocket`` on port 443;
``custom_endpoint_address`` (the SDK's documented option) points it at the emulator's ephemeral port
instead, where the emulator takes the WebSocket upgrade beside AMQP, AMQP over TLS and the administration
API. Through an HTTP CONNECT proxy (``http_proxy``) the SDK asks for ``<host>:443``; the test proxy
(``http_proxy.py``) tunnels that to the emulator. The SDK's own proxy samples run in
``test_sdk_samples_sync.py`` and ``..._async.py``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import websocket
from azure.core.credentials import AzureNamedKeyCredential
from azure.servicebus import ServiceBusClient, ServiceBusMessage, TransportType
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient

from dualbus.sandbox.servicebus.config import EmulatorConfig, NamespaceConfig, QueueConfig
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE
from tests.contract.http_proxy import ConnectProxy

pytestmark = pytest.mark.contract

_QUEUE = "ws-queue"
# More than the bridge's 64 KiB read: the AMQP stream goes over several WebSocket messages each way.
_LARGE = "x" * 150_000


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    config = EmulatorConfig(namespaces=[NamespaceConfig(name="ws", queues=[QueueConfig(name=_QUEUE)])])
    with start_in_process(config=config) as handle:
        yield handle


def _options(emulator: EmulatorThread) -> dict[str, object]:
    return {
        "transport_type": TransportType.AmqpOverWebsocket,
        "custom_endpoint_address": f"sb://{emulator.host}:{emulator.port}",
        "connection_verify": str(emulator.server.tls.ca_bundle),
        "retry_total": 0,
    }


def _credential() -> AzureNamedKeyCredential:
    return AzureNamedKeyCredential(DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE)


def test_sync_client_over_wss_sends_and_receives(emulator: EmulatorThread):
    """The sync client (websocket-client underneath) sends a small and a large message over TLS and
    receives and completes both."""
    namespace = f"{emulator.host}:{emulator.port}"
    with ServiceBusClient(namespace, _credential(), **_options(emulator)) as client:  # type: ignore[arg-type]
        with client.get_queue_sender(_QUEUE) as sender:
            sender.send_messages([ServiceBusMessage("over wss"), ServiceBusMessage(_LARGE)])
        with client.get_queue_receiver(_QUEUE, max_wait_time=5) as receiver:
            received = receiver.receive_messages(max_message_count=2, max_wait_time=5)
            if len(received) < 2:
                received += receiver.receive_messages(max_message_count=1, max_wait_time=5)
            for message in received:
                receiver.complete_message(message)
    assert sorted(str(m) for m in received) == ["over wss", _LARGE]


def test_sync_client_over_plain_ws_from_a_connection_string(emulator: EmulatorThread):
    """The development emulator's connection string (no TLS) takes WebSockets too: ``ws://``."""
    with ServiceBusClient.from_connection_string(
        emulator.connection_string,
        transport_type=TransportType.AmqpOverWebsocket,
        custom_endpoint_address=f"sb://{emulator.host}:{emulator.port}",
        retry_total=0,
    ) as client:
        with client.get_queue_sender(_QUEUE) as sender:
            sender.send_messages(ServiceBusMessage("over ws"))
        with client.get_queue_receiver(_QUEUE, max_wait_time=5) as receiver:
            received = receiver.receive_messages(max_wait_time=5)
            for message in received:
                receiver.complete_message(message)
    assert [str(m) for m in received] == ["over ws"]


async def _async_round_trip(emulator: EmulatorThread) -> list[str]:
    namespace = f"{emulator.host}:{emulator.port}"
    client = AsyncServiceBusClient(namespace, _credential(), **_options(emulator))  # type: ignore[arg-type]
    async with client:
        async with client.get_queue_sender(_QUEUE) as sender:
            await sender.send_messages([ServiceBusMessage("over aio wss"), ServiceBusMessage(_LARGE)])
        async with client.get_queue_receiver(_QUEUE, max_wait_time=5) as receiver:
            received = await receiver.receive_messages(max_message_count=2, max_wait_time=5)
            if len(received) < 2:
                received += await receiver.receive_messages(max_message_count=1, max_wait_time=5)
            for message in received:
                await receiver.complete_message(message)
    return sorted(str(m) for m in received)


@pytest.mark.asyncio
async def test_async_client_over_wss_sends_and_receives(emulator: EmulatorThread):
    """The aio client (aiohttp underneath) sends a small and a large message and receives both."""
    assert await _async_round_trip(emulator) == sorted([_LARGE, "over aio wss"])


@pytest.mark.asyncio
# The aio SDK 7.15.0 passes the proxy's credentials as aiohttp.BasicAuth in proxy_auth, both deprecated
# by aiohttp 3.14; the warnings are the SDK's to heed.
@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'proxy_auth' parameter is deprecated:DeprecationWarning")
async def test_async_client_through_an_http_proxy(emulator: EmulatorThread):
    """The aio client through an HTTP CONNECT proxy, given as Azure/azure-sdk-for-python#40274 says the aio
    SDK needs it (``http://`` in ``proxy_hostname``; the published proxy_async.py leaves it out and fails in
    aiohttp): the proxy is asked for the namespace's host on port 443 and the message goes round."""
    with ConnectProxy(
        ("127.0.0.1", 0), (emulator.host, emulator.port), username="user", password="secret"
    ) as proxy:
        options = {
            "http_proxy": {
                "proxy_hostname": "http://127.0.0.1",
                "proxy_port": proxy.address[1],
                "username": "user",
                "password": "secret",
            },
            "connection_verify": str(emulator.server.tls.ca_bundle),
            "retry_total": 0,
        }
        namespace = f"{emulator.host}:{emulator.port}"
        client = AsyncServiceBusClient(namespace, _credential(), **options)  # type: ignore[arg-type]
        async with client:
            async with client.get_queue_sender(_QUEUE) as sender:
                await sender.send_messages(ServiceBusMessage("through the proxy"))
            async with client.get_queue_receiver(_QUEUE, max_wait_time=5) as receiver:
                received = await receiver.receive_messages(max_wait_time=5)
                for message in received:
                    await receiver.complete_message(message)
    assert [str(m) for m in received] == ["through the proxy"]
    assert set(proxy.log.targets) == {f"{emulator.host}:443"}
    assert proxy.log.refused == 0


def test_a_websocket_to_another_path_is_refused(emulator: EmulatorThread):
    """Only Service Bus's path is a WebSocket endpoint: another answers 404 and no AMQP starts."""
    context = ssl.create_default_context(cafile=str(emulator.server.tls.ca_bundle))
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            f"wss://{emulator.host}:{emulator.port}/elsewhere",
            subprotocols=["AMQPWSB10"],
            sslopt={"context": context},
            timeout=5,
        )
    assert refused.value.status_code == 404


def test_a_websocket_without_the_amqp_subprotocol_is_refused(emulator: EmulatorThread):
    """A client that does not offer ``AMQPWSB10`` is not taken for an AMQP one: 400."""
    context = ssl.create_default_context(cafile=str(emulator.server.tls.ca_bundle))
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(
            f"wss://{emulator.host}:{emulator.port}/$servicebus/websocket",
            sslopt={"context": context},
            timeout=5,
        )
    assert refused.value.status_code == 400


def _raw_websocket(emulator: EmulatorThread) -> websocket.WebSocket:
    context = ssl.create_default_context(cafile=str(emulator.server.tls.ca_bundle))
    return websocket.create_connection(
        f"wss://{emulator.host}:{emulator.port}/$servicebus/websocket",
        subprotocols=["AMQPWSB10"],
        sslopt={"context": context},
        timeout=5,
    )


def test_the_websocket_carries_amqp_and_answers_pings(emulator: EmulatorThread):
    """The accepted WebSocket names the subprotocol, answers a ping with its pong, and carries AMQP: the
    SASL protocol header sent in a binary message is answered with the emulator's SASL header."""
    ws = _raw_websocket(emulator)
    try:
        assert ws.getsubprotocol().upper() == "AMQPWSB10"  # websocket-client lower-cases it
        ws.ping(b"hello")
        opcode, data = ws.recv_data(control_frame=True)
        assert (opcode, data) == (websocket.ABNF.OPCODE_PONG, b"hello")
        ws.send_binary(b"AMQP\x03\x01\x00\x00")
        assert ws.recv()[:8] == b"AMQP\x03\x01\x00\x00"
    finally:
        ws.close()
        ws.shutdown()  # close() leaves the socket open once the server has closed


def test_a_text_message_closes_the_websocket(emulator: EmulatorThread):
    """AMQP travels in binary messages only: text is refused with close code 1003 (RFC 6455, 7.4.1)."""
    ws = _raw_websocket(emulator)
    try:
        ws.send("AMQP")
        opcode, frame = ws.recv_data_frame(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(frame.data[:2], "big") == 1003
    finally:
        ws.close()
        ws.shutdown()  # close() leaves the socket open once the server has closed
