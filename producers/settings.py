"""The producers' own settings, from ``DUALBUS_PRODUCER__*`` variables beside the shared ``Settings``.

Example: ``DUALBUS_PRODUCER__OWN_USERS='["6f1c...-..."]'`` names dualbus's application user as Dataverse
records it (``_modifiedby_value``), so the Dataverse producer does not publish dualbus's own writes back.
``DUALBUS_PRODUCER__FO_WEBHOOK_KEY`` is the key an F&O data event webhook must send as ``?code=<key>``;
set but empty, it is refused (``check_webhook_key``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dualbus.shared.envelope import format_validation_error
from dualbus.shared.errors import ConfigError

__all__ = [
    "WEBHOOK_KEY_VARIABLE",
    "FoEvents",
    "ProducerOptions",
    "ProducerSettings",
    "check_webhook_key",
    "load_producer_settings",
]

WEBHOOK_KEY_VARIABLE = "DUALBUS_PRODUCER__FO_WEBHOOK_KEY"


def check_webhook_key(key: SecretStr | None) -> None:
    """ConfigError for a key that is set but blank.

    A variable that resolved to nothing (a Kubernetes secret without the value) gives ``SecretStr('')``, not
    None: no warning that events are taken without a key, and a request without ``code`` matches it.
    """
    if key is not None and not key.get_secret_value().strip():
        raise ConfigError(
            f"{WEBHOOK_KEY_VARIABLE} is set but empty, which would let any caller send data events: set it "
            "to the webhook's WebhookKey, or unset it to take events without a key"
        )


class FoEvents(StrEnum):
    """How F&O data events reach the producer."""

    NONE = "none"
    WEBHOOK = "webhook"
    SERVICEBUS = "servicebus"


class ProducerOptions(BaseModel):
    """Intervals, batch sizes, the echo users and the F&O event intake."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    own_users: tuple[str, ...] = ()
    # Dataverse's change polls; on F&O, the full scan's interval while data events are off.
    poll_interval_seconds: Annotated[float, Field(gt=0)] = 1.0
    # Dataverse tables that published changes in the last 10 s share the extra reads a second evenly, each
    # read again no sooner than the busy interval (producers.poll_pace); 0 keeps every table on the interval.
    # 14: at most 18 reads a second with eight tables (5,400 of the user's 6,000 per 5 minutes); four busy
    # tables are each read every 0.29 s (with 8, 0.5 s). At 200 changes/s the producer's p99 towards F&O
    # fell from 0.58-0.74 s to 0.40-0.46 s in most runs.
    busy_poll_interval_seconds: Annotated[float, Field(gt=0)] = 0.25
    extra_polls_per_second: Annotated[float, Field(ge=0)] = 14.0
    # The F&O full scan's interval while data events are on (it also runs once at start-up).
    fo_scan_interval_seconds: Annotated[float, Field(gt=0)] = 300.0
    # Below Standard tier's 256 KB message size (a batch is one message): the SDK's size estimate was
    # seen a little under what the emulator counted on the wire. Raise it on Premium; None: the link's.
    max_batch_bytes: Annotated[int, Field(ge=1024)] | None = 224 * 1024
    fo_events: FoEvents = FoEvents.NONE
    webhook_host: str = "127.0.0.1"
    webhook_port: Annotated[int, Field(ge=0, le=65535)] = 8085
    webhook_path: str = "/fo/events"
    # The webhook's WebhookKey (the ``code`` query parameter); None accepts any caller, with a warning.
    fo_webhook_key: SecretStr | None = None
    events_queue: str | None = None
    events_topic: str | None = None
    events_subscription: str | None = None

    @field_validator("fo_webhook_key")
    @classmethod
    def _key_not_blank(cls, key: SecretStr | None) -> SecretStr | None:
        check_webhook_key(key)  # a ConfigError is a ValueError: pydantic reports it as this field's error
        return key


class ProducerSettings(BaseSettings):
    """``DUALBUS_PRODUCER__...`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="DUALBUS_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    producer: ProducerOptions = ProducerOptions()


def load_producer_settings(**overrides: object) -> ProducerOptions:
    """Read the producer options from the environment; ConfigError names what is wrong."""
    try:
        settings = ProducerSettings(**overrides)  # type: ignore[arg-type]  # validated by pydantic
    except ValidationError as exc:
        raise ConfigError(f"invalid producer settings: {format_validation_error(exc)}") from exc
    return settings.producer
