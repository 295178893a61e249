"""Service Bus clients from settings, and the one place where ``azure.*`` errors become dualbus errors.

A client comes from a connection string (SAS, or the emulator's ``UseDevelopmentEmulator=true``) or from a
namespace with Entra ID (``DefaultAzureCredential``). Every call that can fail runs inside
:func:`bus_errors`, so no ``azure.*`` exception escapes to the pipeline:

::

    azure error                                  dualbus error
    connection, communication, timeout,          TransientError   (retry after a pause)
    server busy, session cannot be locked,
    entity disabled, quota exceeded
    message or session lock lost                 LockLostError    (a BusError: the message comes back)
    a message or batch larger than allowed       MessageTooLargeError (a BusError: split it, or refuse it)
    anything else (auth, not found, ...)         BusError

Error classes: https://learn.microsoft.com/python/api/azure-servicebus/azure.servicebus.exceptions
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import certifi
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.servicebus import ServiceBusClient, parse_connection_string
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.exceptions import (
    MessageAlreadySettled,
    MessageLockLostError,
    MessageSizeExceededError,
    MessagingEntityDisabledError,
    OperationTimeoutError,
    ServiceBusAuthorizationError,
    ServiceBusCommunicationError,
    ServiceBusConnectionError,
    ServiceBusQuotaExceededError,
    ServiceBusServerBusyError,
    SessionCannotBeLockedError,
    SessionLockLostError,
)

from dualbus.shared.errors import (
    BusError,
    ConfigError,
    DualbusError,
    LockLostError,
    MessageTooLargeError,
    TransientError,
)
from dualbus.shared.identity import ClosableCredential, async_namespace_credential, namespace_credential
from dualbus.shared.logs import redact
from dualbus.shared.settings import ServiceBusSettings

__all__ = [
    "LockLostError",
    "MessageTooLargeError",
    "async_bus_client",
    "bus_client",
    "bus_errors",
    "checked_connection_string",
    "translate_bus_error",
]

_log = logging.getLogger("dualbus")
# How long an async client's close may take (each of its senders' and receivers' closes in turn).
_CLIENT_CLOSE_SECONDS = 10.0
# Worth another try after a pause: the namespace or the network is briefly unavailable.
_TRANSIENT = (
    ServiceBusConnectionError,
    ServiceBusCommunicationError,
    OperationTimeoutError,
    ServiceBusServerBusyError,
    SessionCannotBeLockedError,
    MessagingEntityDisabledError,
)
_LOCK_LOST = (MessageLockLostError, SessionLockLostError)
# What each claim Service Bus may ask for takes: the roles of docs/deploy.md, or a SAS key's rights.
_RIGHTS_HINT = (
    "where it names a claim, 'Listen' needs Azure Service Bus Data Receiver, 'Send' Data Sender, 'Manage' "
    "Data Owner, on the entity named, or a shared access key with that right; else check the key or token"
)
# The first kind an exception is makes its dualbus error, with this text ({name}: the exception's type).
_TRANSLATIONS: tuple[tuple[tuple[type[BaseException], ...], type[DualbusError], str], ...] = (
    # "The messaging entity has reached its maximum allowable size, or the maximum number of connections
    # to a namespace has been exceeded. Create space in the entity by receiving messages" (the SDK's own
    # docstring): a topic filled while its consumers were down empties when they are back, so a producer
    # waits and tries again, saying why, rather than stop (and its F&O webhook with it).
    (
        (ServiceBusQuotaExceededError,),
        TransientError,
        (
            "Service Bus quota exceeded (an entity is full, or the namespace has too many connections; "
            "receiving its messages makes room): {name}: {exc}"
        ),
    ),
    (_TRANSIENT, TransientError, "Service Bus is unavailable: {name}: {exc}"),
    (_LOCK_LOST, LockLostError, "the lock was lost: {name}: {exc}"),
    ((MessageSizeExceededError,), MessageTooLargeError, "Service Bus failed: {name}: {exc}"),
    ((MessageAlreadySettled,), BusError, "the message was already settled: {exc}"),
    # The service names the claim it wanted; say which role or key right gives it (docs/deploy.md).
    (
        (ServiceBusAuthorizationError,),
        BusError,
        "Service Bus refused this identity or key: {name}: {exc} (" + _RIGHTS_HINT + ")",
    ),
)


def translate_bus_error(exc: BaseException) -> DualbusError:
    """The dualbus error for an ``azure.*`` exception (or MessageAlreadySettled); others pass unchanged."""
    if isinstance(exc, DualbusError):
        return exc
    name = type(exc).__name__
    for kinds, error, text in _TRANSLATIONS:
        if isinstance(exc, kinds):
            return error(text.format(name=name, exc=exc))
    # Authentication, missing entities: an operator has to act.
    return BusError(f"Service Bus failed: {name}: {exc}")


@contextmanager
def bus_errors() -> Iterator[None]:
    """Run a block (sync, or awaiting inside) with ``azure.*`` errors translated into dualbus errors."""
    try:
        yield
    except (AzureError, MessageAlreadySettled) as exc:
        raise translate_bus_error(exc) from exc


def checked_connection_string(settings: ServiceBusSettings) -> str:
    """The connection string, refused as a ConfigError when malformed (the SDK would raise a ValueError).

    The SDK's own parser decides (``azure.servicebus.parse_connection_string``); its message names no part
    of the secret.
    """
    assert settings.connection_string is not None  # noqa: S101 - callers check which way to connect
    text = settings.connection_string.get_secret_value()
    try:
        parse_connection_string(text)
    except ValueError as exc:
        raise ConfigError(
            f"DUALBUS_SERVICEBUS__CONNECTION_STRING is malformed ({exc}): it must read "
            "Endpoint=sb://<namespace>/ then ;SharedAccessKeyName and ;SharedAccessKey "
            "(as the portal's Shared access policies show)"
        ) from exc
    return text


@asynccontextmanager
async def async_bus_client(
    settings: ServiceBusSettings,
    **options: Any,  # noqa: ANN401 - passed through to the SDK as its own options
) -> AsyncIterator[AsyncServiceBusClient]:
    """An open ``azure.servicebus.aio.ServiceBusClient``; closes it (and its credential) on exit.

    ``options`` pass to the SDK client, e.g. ``retry_total`` or ``retry_backoff_factor``.
    """
    credential: AsyncTokenCredential | None = None
    options = _with_tls_context(options)
    with bus_errors():
        if settings.connection_string is not None:
            client = AsyncServiceBusClient.from_connection_string(
                checked_connection_string(settings), **options
            )
        else:
            credential = async_namespace_credential()
            client = AsyncServiceBusClient(_namespace(settings), credential, **options)
    try:
        yield client
    finally:
        with bus_errors():
            try:
                # The SDK closes each of its handlers in turn and waits for the broker on each: one that no
                # longer answers would hold the process past any deadline its caller keeps.
                await asyncio.wait_for(client.close(), _CLIENT_CLOSE_SECONDS)
            except TimeoutError:
                _log.warning(
                    "the Service Bus client took more than %g s to close: left", _CLIENT_CLOSE_SECONDS
                )
            if credential is not None:
                await credential.close()


@contextmanager
def bus_client(
    settings: ServiceBusSettings,
    **options: Any,  # noqa: ANN401 - passed through to the SDK as its own options
) -> Iterator[ServiceBusClient]:
    """An open synchronous ``azure.servicebus.ServiceBusClient``; closes it (and its credential) on exit."""
    credential: ClosableCredential | None = None
    options = _with_tls_context(options)
    with bus_errors():
        if settings.connection_string is not None:
            client = ServiceBusClient.from_connection_string(checked_connection_string(settings), **options)
        else:
            credential = namespace_credential()
            client = ServiceBusClient(_namespace(settings), credential, **options)
    try:
        yield client
    finally:
        with bus_errors():
            client.close()
            if credential is not None:
                credential.close()


def _with_tls_context(options: dict[str, Any]) -> dict[str, Any]:
    """The options with one TLS context shared by every connection the client opens.

    Left to itself, the SDK builds a new ``SSLContext`` and loads the whole CA bundle into it for every
    connection, even a plain one to the emulator; every sender and every session receiver opens its own
    connection, so a consumer taking sessions spent about a third of its CPU on that. The shared context
    verifies against the bundle the SDK would have loaded (``connection_verify``, else certifi's).
    """
    verify = options.get("connection_verify")
    if "ssl_context" in options or (verify is not None and not isinstance(verify, str)):
        return options
    rest = {name: value for name, value in options.items() if name != "connection_verify"}
    return {**rest, "ssl_context": _tls_context(verify or certifi.where())}


@functools.cache
def _tls_context(ca_file: str) -> ssl.SSLContext:
    # As the SDK's own: TLS client, certificate and host name checked.
    return ssl.create_default_context(cafile=ca_file)


def _namespace(settings: ServiceBusSettings) -> str:
    # The settings validator guarantees one of the two is set; a namespace is checked here for its shape.
    namespace = settings.namespace or ""
    if not namespace or "/" in namespace:
        raise BusError(
            f"namespace must be a host name like contoso.servicebus.windows.net, not {redact(namespace)!r}"
        )
    return namespace
