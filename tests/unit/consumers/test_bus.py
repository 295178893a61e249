"""Service Bus clients come from settings, and azure errors leave shared.bus only as dualbus errors."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.exceptions import (
    MessageAlreadySettled,
    MessageLockLostError,
    MessagingEntityNotFoundError,
    OperationTimeoutError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ServiceBusConnectionError,
    ServiceBusQuotaExceededError,
    ServiceBusServerBusyError,
    SessionCannotBeLockedError,
    SessionLockLostError,
)
from pydantic import SecretStr

from dualbus.shared.bus import LockLostError, async_bus_client, bus_client, bus_errors, translate_bus_error
from dualbus.shared.errors import BusError, DualbusError, ThrottledError, TransientError
from dualbus.shared.settings import ServiceBusSettings

EMULATOR = ServiceBusSettings(
    connection_string=SecretStr(
        "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
    )
)


@pytest.mark.parametrize(
    "error",
    [
        ServiceBusConnectionError(message="down"),
        OperationTimeoutError(message="slow"),
        ServiceBusServerBusyError(message="busy"),
        SessionCannotBeLockedError(message="taken"),
        ServiceBusQuotaExceededError(message="full"),
    ],
)
def test_retryable_azure_errors_become_transient(error):
    """Connection, timeout, busy, session-taken and quota errors are translated into TransientError: a full
    topic empties as its consumers receive, and a producer that stopped on it took its F&O webhook along."""
    translated = translate_bus_error(error)
    assert type(translated) is TransientError
    assert type(error).__name__ in str(translated)


@pytest.mark.parametrize(
    "error", [MessageLockLostError(message="gone"), SessionLockLostError(message="gone")]
)
def test_lost_locks_become_lock_lost(error):
    """A lost message or session lock is a LockLostError, which is a BusError and not transient."""
    translated = translate_bus_error(error)
    assert isinstance(translated, LockLostError)
    assert isinstance(translated, BusError)
    assert not isinstance(translated, TransientError)


@pytest.mark.parametrize(
    "error",
    [
        ServiceBusAuthenticationError(message="bad key"),
        MessagingEntityNotFoundError(message="no topic"),
        ClientAuthenticationError(message="no credential"),
        MessageAlreadySettled(),
    ],
)
def test_other_azure_errors_become_bus_errors(error):
    """Errors an operator must fix (auth, missing entity, double settle) become plain BusError."""
    translated = translate_bus_error(error)
    assert type(translated) is BusError


def test_a_refused_right_says_which_role_gives_it():
    """An authorization refusal names the role or key right to grant, beside the service's own words."""
    error = ServiceBusAuthorizationError(message="'Listen' claim(s) are required to perform this operation")
    translated = translate_bus_error(error)
    assert type(translated) is BusError
    assert "'Listen' claim(s) are required" in str(translated)
    assert "'Listen' needs Azure Service Bus Data Receiver" in str(translated)
    assert "else check the key or token" in str(translated)


def test_dualbus_errors_pass_through_unchanged():
    """An error that is already dualbus's own is returned as it is."""
    error = ThrottledError("wait", retry_after=2.0)
    assert translate_bus_error(error) is error


def test_bus_errors_chains_the_original():
    """bus_errors raises the translated error with the azure exception as its cause."""
    original = ServiceBusConnectionError(message="refused")
    with pytest.raises(TransientError) as caught, bus_errors():
        raise original
    assert caught.value.__cause__ is original


def test_bus_errors_leaves_other_exceptions_alone():
    """Exceptions that are not azure's pass through bus_errors untouched."""
    with pytest.raises(KeyError), bus_errors():
        raise KeyError("x")


def test_sync_client_from_connection_string():
    """A connection string yields a client for its endpoint without touching the network."""
    with bus_client(EMULATOR) as client:
        assert client.fully_qualified_namespace == "127.0.0.1:5672"


@pytest.mark.asyncio
async def test_async_client_from_connection_string():
    """The aio client comes from the connection string and is the SDK's aio ServiceBusClient."""
    async with async_bus_client(EMULATOR, retry_total=1) as client:
        assert isinstance(client, AsyncServiceBusClient)
        assert client.fully_qualified_namespace == "127.0.0.1:5672"


def test_sync_client_from_namespace_uses_a_credential():
    """A namespace yields a client authenticated by DefaultAzureCredential for that namespace."""
    settings = ServiceBusSettings(namespace="contoso.servicebus.windows.net")
    with bus_client(settings) as client:
        assert client.fully_qualified_namespace == "contoso.servicebus.windows.net"
        assert type(client._credential).__name__ == "DefaultAzureCredential"


@pytest.mark.asyncio
async def test_async_client_from_namespace_uses_a_credential():
    """A namespace yields an aio client authenticated by the async DefaultAzureCredential."""
    settings = ServiceBusSettings(namespace="contoso.servicebus.windows.net")
    async with async_bus_client(settings) as client:
        assert client.fully_qualified_namespace == "contoso.servicebus.windows.net"
        assert type(client._credential).__name__ == "DefaultAzureCredential"


def test_namespace_with_a_scheme_is_refused():
    """A namespace given as a URL is refused with a BusError naming the expected shape."""
    settings = ServiceBusSettings(namespace="sb://contoso.servicebus.windows.net/")
    with pytest.raises(DualbusError, match="host name"), bus_client(settings):
        pass
