"""Many changes of one ordering bucket in one message: the CloudEvents JSON batch format.

Every message costs the SDK, the broker and the consumer a price of its own (building it, transferring it,
a settlement round trip) that is far above applying one row, and an initial sync sends every row of a
table. So a backfill sends its changes in batches: a JSON array of envelopes, media type
``application/cloudevents-batch+json`` (CloudEvents JSON Event Format 1.0, section 4, "JSON Batch Format":
https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md#4-json-batch-format).
Live changes stay one per message: their latency and their dead letters are per record.

The changes of one batch share area, entity, origin and ordering bucket, so the batch travels in the very
session each of its records' changes travels in, and the subscription rules route it as they route one
change. Its message id comes from its changes' ids: a re-publish after a crash repeats it, and duplicate
detection absorbs it. A consumer checks every change as it checks a message of its own
(``checked_batch``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from opentelemetry import propagate

from dualbus.shared.envelope import Envelope, envelopes_from_json, time_problem
from dualbus.shared.errors import RejectedError, Rejection
from dualbus.shared.messages import (
    DEFAULT_BUCKETS,
    TRACE_PROPERTIES,
    application_properties,
    body_bytes,
    envelope_from_message,
    normal_content_type,
    ordering_bucket,
)
from dualbus.shared.routing import is_replay_id
from dualbus.shared.topology import ORIGINAL_ID_PROPERTY, REPLAY_COUNT_PROPERTY

__all__ = [
    "BATCH_CONTENT_TYPE",
    "MAX_BATCH_CHANGES",
    "batch_id",
    "checked_batch",
    "envelopes_of",
    "is_batch",
    "to_batch_message",
]

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8"
# Changes per batch: a few dozen rows already make the per-message costs vanish, and a batch stays far
# below the 256 KB a Standard namespace allows per message.
MAX_BATCH_CHANGES = 100
# What every change of a batch shares, copied to the message's application properties for the rules.
BATCH_PROPERTIES = ("area", "entity", "origin")
_BATCH_NAMESPACE = uuid.UUID("6f1c2a77-3e0b-4f5e-9a2d-0c8b7e4d1f35")
_SUBJECT_SUFFIX = ".batch"


def batch_id(envelopes: Sequence[Envelope]) -> str:
    """The deterministic message id of a batch: the same changes always make the same id."""
    return str(uuid.uuid5(_BATCH_NAMESPACE, ",".join(envelope.id for envelope in envelopes)))


def to_batch_message(envelopes: Sequence[Envelope], *, buckets: int = DEFAULT_BUCKETS) -> ServiceBusMessage:
    """One message carrying ``envelopes``, which must share area, entity, origin and ordering bucket."""
    if not envelopes:
        raise ValueError("a batch holds at least one change")
    first = envelopes[0]
    bucket = ordering_bucket(first.area, first.key, buckets)
    for envelope in envelopes[1:]:
        if (
            _shared(envelope) != _shared(first)
            or ordering_bucket(envelope.area, envelope.key, buckets) != bucket
        ):
            raise ValueError(f"event {envelope.id} does not share area, entity, origin and bucket {bucket!r}")
    properties: dict[str | bytes, Any] = dict(zip(BATCH_PROPERTIES, _shared(first), strict=True))
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    properties.update({name: carrier[name] for name in TRACE_PROPERTIES if name in carrier})
    return ServiceBusMessage(
        b"[" + b",".join(envelope.to_json() for envelope in envelopes) + b"]",
        message_id=batch_id(envelopes),
        session_id=bucket,
        content_type=BATCH_CONTENT_TYPE,
        subject=first.entity + _SUBJECT_SUFFIX,
        application_properties=properties,
    )


def is_batch(message: ServiceBusReceivedMessage | ServiceBusMessage) -> bool:
    """Whether a message says it carries a batch of changes (by its content type)."""
    given = message.content_type
    return given is not None and normal_content_type(given) == normal_content_type(BATCH_CONTENT_TYPE)


def envelopes_of(message: ServiceBusReceivedMessage | ServiceBusMessage) -> list[Envelope]:
    """The changes a message carries, one or a batch, decoded and validated but not checked against it."""
    if is_batch(message):
        return envelopes_from_json(body_bytes(message.body))
    return [envelope_from_message(message)]


def checked_batch(
    message: ServiceBusReceivedMessage, *, buckets: int = DEFAULT_BUCKETS, now: datetime | None = None
) -> list[Envelope]:
    """A batch message's changes, once the message agrees with each of them as ``to_batch_message`` sets.

    EnvelopeError when the body is no array of envelopes; RejectedError naming the check and the change
    otherwise: the shared properties and subject, the message id, each change's ordering bucket, a
    plausible event time.
    """
    envelopes = envelopes_from_json(body_bytes(message.body))
    properties = application_properties(message)
    for index, envelope in enumerate(envelopes):
        for reason, problem in (
            (Rejection.PROPERTY_MISMATCH, _property_problem(message, properties, envelope)),
            (Rejection.PROPERTY_MISMATCH, _bucket_problem(message, envelope, buckets)),
            (Rejection.IMPLAUSIBLE_TIME, time_problem(envelope.time, now)),
        ):
            if problem is not None:
                raise RejectedError(
                    f"change {index} of the batch, event {envelope.id}: {problem}", reason=reason
                )
    own = batch_id(envelopes)
    # A replay (``dualbus dlq replay``) is sent with a replay id of the original (``replay_id``).
    replayed = properties.get(ORIGINAL_ID_PROPERTY) == own and is_replay_id(
        message.message_id, own, properties.get(REPLAY_COUNT_PROPERTY)
    )
    if message.message_id != own and not replayed:
        problem = f"the message id {message.message_id!r} is not the id of the changes it carries"
        raise RejectedError(f"batch: {problem}", reason=Rejection.PROPERTY_MISMATCH)
    return envelopes


def _shared(envelope: Envelope) -> tuple[str, str, str]:
    return envelope.area, envelope.entity, envelope.origin.value


def _property_problem(
    message: ServiceBusReceivedMessage, properties: dict[str, Any], envelope: Envelope
) -> str | None:
    for name, value in zip(BATCH_PROPERTIES, _shared(envelope), strict=True):
        if properties.get(name) != value:
            return f"the application property {name} is {properties.get(name)!r}, the change says {value!r}"
    subject = envelope.entity + _SUBJECT_SUFFIX
    if message.subject is not None and message.subject != subject:
        return f"the subject is {message.subject!r}, the change says {subject!r}"
    return None


def _bucket_problem(message: ServiceBusReceivedMessage, envelope: Envelope, buckets: int) -> str | None:
    bucket = ordering_bucket(envelope.area, envelope.key, buckets)
    if message.session_id != bucket:
        return f"the session id is {message.session_id!r}, but the record's ordering bucket is {bucket!r}"
    return None
