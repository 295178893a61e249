"""Service Bus runtime counts through the administration API (``ServiceBusAdministrationClient``).

The same connection string serves messaging and administration, as on Azure. For the development emulator
(``UseDevelopmentEmulator=true``) the certificate is from no public CA, so it is not verified.
azure errors become dualbus errors here, as in ``shared.bus``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.servicebus.management import ServiceBusAdministrationClient
from urllib3.exceptions import InsecureRequestWarning

from dualbus.shared.bus import checked_connection_string
from dualbus.shared.errors import BusError, TransientError
from dualbus.shared.identity import ClosableCredential, namespace_credential
from dualbus.shared.settings import ServiceBusSettings

__all__ = ["AdminCounts", "SubscriptionCounts", "admin_client", "admin_counts"]


@dataclass(frozen=True, slots=True)
class SubscriptionCounts:
    """A subscription's message counts and when it was last read from."""

    active: int
    dead_lettered: int
    accessed_at: datetime | None


class AdminCounts:
    """Reads runtime counts; every call translates azure errors."""

    def __init__(self, client: ServiceBusAdministrationClient) -> None:
        self._client = client

    def subscription(self, topic: str, subscription: str) -> SubscriptionCounts:
        """The counts of one subscription."""
        with _admin_errors(f"{topic}/{subscription}"):
            props = self._client.get_subscription_runtime_properties(topic, subscription)
        return SubscriptionCounts(
            active=props.active_message_count or 0,
            dead_lettered=props.dead_letter_message_count or 0,
            accessed_at=props.accessed_at_utc,
        )

    def scheduled(self, topic: str) -> int:
        """Messages scheduled on a topic and not yet enqueued."""
        with _admin_errors(topic):
            return self._client.get_topic_runtime_properties(topic).scheduled_message_count or 0


@contextmanager
def _admin_errors(entity: str) -> Iterator[None]:
    try:
        yield
    except ResourceNotFoundError as exc:
        raise BusError(f"{entity} does not exist on the namespace") from exc
    except AzureError as exc:
        raise TransientError(f"the administration API failed for {entity}: {type(exc).__name__}") from exc


@contextmanager
def admin_counts(settings: ServiceBusSettings) -> Iterator[AdminCounts]:
    """Runtime counts through an administration client from the settings, closed on exit."""
    with admin_client(settings) as client:
        yield AdminCounts(client)


@contextmanager
def admin_client(settings: ServiceBusSettings) -> Iterator[ServiceBusAdministrationClient]:
    """An administration client from the settings, closed on exit."""
    credential: ClosableCredential | None = None
    emulator = False
    with _admin_errors("the namespace"):
        if settings.connection_string is not None:
            text = checked_connection_string(settings)
            emulator = "usedevelopmentemulator=true" in text.replace(" ", "").lower()
            # The emulator's certificate is from no public CA; Azure's is verified as usual.
            client = ServiceBusAdministrationClient.from_connection_string(
                text, connection_verify=not emulator
            )
        else:
            credential = namespace_credential()
            client = ServiceBusAdministrationClient(settings.namespace or "", credential)
    try:
        with client, warnings.catch_warnings():
            if settings.connection_string is not None and emulator:
                # Not verifying the emulator's own certificate is deliberate; say so once, not per request.
                warnings.simplefilter("ignore", InsecureRequestWarning)
            yield client
    finally:
        if credential is not None:
            credential.close()
