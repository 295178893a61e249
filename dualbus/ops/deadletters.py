"""Dead-lettered messages as plain records: what failed, why, and the message to send when replaying it.

Pure: nothing here talks to the bus (see ``dualbus.ops.dlq`` for that).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from dualbus.ops._plain import sdk_value, to_plain
from dualbus.ops.bodies import BodyKind, MessageBody
from dualbus.shared.bus_types import AmqpMessage, AmqpProperties, OutgoingMessage, ReceivedMessage
from dualbus.shared.errors import ConfigError
from dualbus.shared.messages import application_properties
from dualbus.shared.routing import replay_id
from dualbus.shared.topology import ORIGINAL_ID_PROPERTY, REPLAY_COUNT_PROPERTY, REPLAY_TARGET_PROPERTY

__all__ = [
    "ORIGINAL_ID_PROPERTY",
    "REPLAY_COUNT_PROPERTY",
    "DeadLetter",
    "DeadLetterFilter",
    "ReasonGroup",
    "apply_edits",
    "edit_body",
    "group_by_reason",
    "parse_edits",
    "replay_message",
]

# Service Bus adds these to a dead-lettered message; a replayed copy must not carry the old verdict.
_DEAD_LETTER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})
# "Maximum size of a message ID: 128" (Service Bus quotas); the SDK refuses a longer one with a ValueError.
# https://github.com/MicrosoftDocs/azure-docs/blob/03df76b37acd5663e6d89fdfaa0d0e7ee84b435b/includes/service-bus-quotas-table.md
_MAX_MESSAGE_ID = 128


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message of one area's subscription."""

    area: str
    topic: str
    subscription: str
    sequence_number: int
    message_id: str
    reason: str
    description: str
    enqueued_time: datetime | None
    delivery_count: int
    session_id: str | None
    subject: str | None
    content_type: str | None
    body: bytes  # a data body's bytes; empty when the body is an AMQP value or sequence (see message_body)
    properties: Mapping[str, Any] = field(default_factory=dict)
    amqp_body: MessageBody | None = None  # the body as received; None stands for ``body`` as one data section

    @classmethod
    def from_message(
        cls, message: ReceivedMessage, *, area: str, topic: str, subscription: str
    ) -> DeadLetter:
        """Read a received dead-letter message into a record (body of any kind copied, properties decoded)."""
        body = MessageBody.of(message)
        return cls(
            area=area,
            topic=topic,
            subscription=subscription,
            sequence_number=message.sequence_number or 0,
            message_id=str(message.message_id or ""),
            reason=message.dead_letter_reason or "(none)",
            description=message.dead_letter_error_description or "",
            enqueued_time=message.enqueued_time_utc,
            delivery_count=message.delivery_count or 0,
            session_id=message.session_id,
            subject=message.subject,
            content_type=message.content_type,
            body=body.joined,
            properties=application_properties(message),
            amqp_body=body,
        )

    @property
    def message_body(self) -> MessageBody:
        """The body of whatever kind it was received as."""
        return self.amqp_body if self.amqp_body is not None else MessageBody.data(self.body)

    @property
    def replay_count(self) -> int:
        """How many times this message was replayed before."""
        return int(self.properties.get(REPLAY_COUNT_PROPERTY, 0))

    @property
    def original_message_id(self) -> str:
        """The message id of the first publish, before any replay."""
        return str(self.properties.get(ORIGINAL_ID_PROPERTY, self.message_id))

    def age(self, now: datetime) -> timedelta:
        """How long ago the message was first enqueued (zero when unknown)."""
        return now - self.enqueued_time if self.enqueued_time else timedelta(0)

    @property
    def place(self) -> tuple[str, str, int]:
        """Where the letter is: its area, subscription and sequence number (unique only within a route)."""
        return (self.area, self.subscription, self.sequence_number)

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON object of an export; its body converts back (``MessageBody.from_json``)."""
        return {
            "area": self.area,
            "subscription": self.subscription,
            "sequence_number": self.sequence_number,
            "message_id": self.message_id,
            "original_message_id": self.original_message_id,
            "reason": self.reason,
            "description": self.description,
            "enqueued_time": self.enqueued_time.isoformat() if self.enqueued_time else None,
            "delivery_count": self.delivery_count,
            "replay_count": self.replay_count,
            "session_id": self.session_id,
            "subject": self.subject,
            "content_type": self.content_type,
            "properties": to_plain(dict(self.properties)),
            **self.message_body.to_json(),
        }


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead-letters an operation applies to; an empty filter matches nothing unless ``everything``."""

    # Message ids or sequence numbers as an operator types them (``--id``): either matches.
    ids: frozenset[str] = frozenset()
    # Sequence numbers alone (the letters ticked in the console, a file's lines): a letter whose message id
    # happens to spell one of them is not picked with it.
    sequence_numbers: frozenset[int] = frozenset()
    reasons: frozenset[str] = frozenset()
    areas: frozenset[str] = frozenset()
    subscriptions: frozenset[str] = frozenset()
    older_than: timedelta | None = None
    everything: bool = False
    # When given, only these letters, by (area, subscription, sequence number): the ones an operator was
    # shown and confirmed, not whatever else matches by the time the pass reaches it.
    letters: frozenset[tuple[str, str, int]] | None = None

    @property
    def is_empty(self) -> bool:
        """True when no criterion was given and ``everything`` is off: an operation must refuse to run."""
        criteria = (self.ids, self.sequence_numbers, self.reasons, self.areas)
        # An age of 0 minutes is a criterion (every letter is that old), not none: timedelta(0) is falsy.
        return not (self.everything or any(criteria) or self.older_than is not None)

    def matches(self, letter: DeadLetter, now: datetime) -> bool:
        """Whether ``letter`` is selected; every given criterion must hold."""
        if self.is_empty:
            return False
        checks = (
            not (self.ids or self.sequence_numbers)
            or bool({letter.message_id, str(letter.sequence_number)} & self.ids)
            or letter.sequence_number in self.sequence_numbers,
            not self.reasons or letter.reason in self.reasons,
            not self.areas or letter.area in self.areas,
            not self.subscriptions or letter.subscription in self.subscriptions,
            self.older_than is None or letter.age(now) >= self.older_than,
            self.letters is None or letter.place in self.letters,
        )
        return all(checks)


@dataclass(frozen=True, slots=True)
class ReasonGroup:
    """Dead-letters of one area's subscription that share a reason."""

    area: str
    subscription: str
    reason: str
    count: int
    oldest: timedelta
    newest: timedelta
    example_description: str


def group_by_reason(letters: Iterable[DeadLetter], now: datetime) -> list[ReasonGroup]:
    """Group dead-letters by (area, subscription, reason), largest groups first."""
    groups: dict[tuple[str, str, str], list[DeadLetter]] = defaultdict(list)
    for letter in letters:
        groups[(letter.area, letter.subscription, letter.reason)].append(letter)
    result = [
        ReasonGroup(
            area=area,
            subscription=subscription,
            reason=reason,
            count=len(members),
            oldest=max(member.age(now) for member in members),
            newest=min(member.age(now) for member in members),
            example_description=Counter(m.description for m in members).most_common(1)[0][0],
        )
        for (area, subscription, reason), members in groups.items()
    ]
    return sorted(result, key=lambda g: (-g.count, g.area, g.subscription, g.reason))


def parse_edits(assignments: Sequence[str]) -> dict[str, Any]:
    """``field=value`` pairs (a dotted path into the envelope, e.g. ``data.SalesCurrencyCode=USD``).

    A value that reads as JSON (``12``, ``true``, ``null``, ``"x"``) is taken as that JSON value; anything
    else is a string.
    """
    edits: dict[str, Any] = {}
    for assignment in assignments:
        path, separator, raw = assignment.partition("=")
        if not separator or not path.strip():
            raise ConfigError(f"an edit must look like field=value, not {assignment!r}")
        try:
            value: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = raw
        edits[path.strip()] = value
    return edits


def apply_edits(body: bytes, edits: Mapping[str, Any]) -> bytes:
    """The JSON body with each dotted path set to its new value; ConfigError if the body is not an object.

    A batch of changes (a JSON array of envelopes, ``shared.message_batches``) gets each edit in every one
    of its changes: they share entity and origin, so the same field means the same thing in each.
    """
    if not edits:
        return body
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError("the message body is not JSON, so it cannot be edited field by field") from exc
    changes = document if isinstance(document, list) and document else [document]
    if not all(isinstance(change, dict) for change in changes):
        raise ConfigError(
            "the message body is not a JSON object (or an array of them), "
            "so it cannot be edited field by field"
        )
    for change in changes:
        for path, value in edits.items():
            _set_path(change, path.split("."), value)
    return orjson.dumps(document)


def _set_path(document: dict[str, Any], parts: list[str], value: Any) -> None:  # noqa: ANN401 - JSON value
    node = document
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {'.'.join(parts)}: {part} is not an object")
        node = child
    node[parts[-1]] = value


def edit_body(body: MessageBody, edits: Mapping[str, Any]) -> MessageBody:
    """``body`` with ``edits`` applied (see ``apply_edits``); only a JSON data body can be edited."""
    if not edits:
        return body
    if body.kind != BodyKind.DATA or len(body.content) != 1:
        raise ConfigError(
            f"the message body is an AMQP {body.kind.value}, so it cannot be edited field by field"
        )
    return MessageBody.data(apply_edits(body.joined, edits))


def replay_message(letter: DeadLetter, *, body: MessageBody | None = None) -> OutgoingMessage | AmqpMessage:
    """The message that replays ``letter`` to the one subscription it was dead-lettered from.

    Its id is derived from the original id, the replay count and the body (``replay_id``), so re-running a
    replay that crashed after sending (but before completing the dead-letter) sends a duplicate that
    duplicate detection absorbs, while a replay sent again with another edit is not taken for one.
    The body goes back as the kind it came as; ConfigError if it cannot be encoded.
    """
    count = letter.replay_count + 1
    properties: dict[str | bytes, Any] = {
        name: sdk_value(value)
        for name, value in letter.properties.items()
        if name not in _DEAD_LETTER_PROPERTIES
    }
    properties[REPLAY_COUNT_PROPERTY] = count
    properties[ORIGINAL_ID_PROPERTY] = letter.original_message_id
    properties[REPLAY_TARGET_PROPERTY] = letter.subscription
    content = letter.message_body if body is None else body
    single = content.kind == BodyKind.DATA and len(content.content) == 1
    # The digest of what is sent: the data's own bytes, or the body's export form for the other kinds.
    sent = content.joined if single else orjson.dumps(content.to_json())
    message_id = replay_id(letter.original_message_id, count, sent)
    if len(message_id) > _MAX_MESSAGE_ID:
        raise ConfigError(
            f"the replay's message id would be {len(message_id)} characters, over Service Bus's "
            f"{_MAX_MESSAGE_ID} (the original id is {letter.original_message_id!r})"
        )
    if single:
        return OutgoingMessage(
            content.joined,
            message_id=message_id,
            session_id=letter.session_id,
            subject=letter.subject,
            content_type=letter.content_type,
            application_properties=properties,
        )
    # ServiceBusMessage sends one data section only; the AMQP message carries every kind of body.
    amqp_properties = AmqpProperties(
        message_id=message_id,
        group_id=letter.session_id,
        subject=letter.subject,
        content_type=letter.content_type,
    )
    return AmqpMessage(
        properties=amqp_properties,
        application_properties={str(name): value for name, value in properties.items()},
        **content.sdk_body(),
    )
