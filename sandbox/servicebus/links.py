"""Proton links as the broker sees them: a receiving client's link is a Consumer; replies go out here too.

Proton's Python ``Delivery.tag`` decodes the tag as UTF-8 and fails on binary lock tokens, so the token is
kept as an attribute on the delivery (proton keeps wrapper attributes with the C object).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from typing import Any

from proton import Condition, Delivery, Link, Terminus, symbol

from dualbus.sandbox.servicebus.codec import Described, encode
from dualbus.sandbox.servicebus.entity import Entity, StoredMessage
from dualbus.sandbox.servicebus.settlement import ABANDON, COMPLETE, DEAD_LETTER, DEFER, RELEASE

__all__ = [
    "LinkConsumer",
    "close_link",
    "entity_address",
    "open_echo",
    "outcome",
    "refuse_link",
    "refuse_receiver",
    "reject",
    "remote_timeout_ms",
    "reply",
    "send_settled",
    "settle",
    "source_filters",
    "text_keys",
]

# .NET ticks at the Unix epoch: the SDK reads com.microsoft:locked-until-utc in ticks.
_EPOCH_TICKS = 621355968000000000
_tags = itertools.count(1)


def entity_address(address: str | None) -> str:
    """The entity path of a link address (``amqps://host:port/Queue`` or ``queue``), lower case."""
    text = (address or "").strip()
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text.split("/", 1)[1] if "/" in text else ""
    return text.strip("/").lower()


def open_echo(link: Link, properties: Mapping[str, Any] | None = None) -> None:
    """Open a link echoing the client's termini and settle modes, as the SDK requires."""
    link.source.copy(link.remote_source)
    link.target.copy(link.remote_target)
    link.snd_settle_mode = link.remote_snd_settle_mode
    link.rcv_settle_mode = link.remote_rcv_settle_mode
    if properties:
        link.properties = {symbol(k): v for k, v in properties.items()}
    link.open()


def close_link(link: Link, condition: str, description: str) -> None:
    """Refuse or end a link with an AMQP error the SDK maps to its exception."""
    if not link.state & Link.LOCAL_ACTIVE:
        open_echo(link)
    link.condition = Condition(condition, description)
    link.close()


def refuse_link(link: Link, condition: str, description: str) -> None:
    """Refuse an attach: answer it, then detach with the error the SDK raises."""
    link.condition = Condition(condition, description)
    link.close()


def refuse_receiver(link: Link, condition: str, description: str) -> None:
    """Refuse a receiver's attach, as Azure does: a next-available one that found no session, one for a
    session another receiver holds, or one of the wrong kind for its entity (receiver_kinds.py).

    Azure answers such an attach with a null source and then detaches with the error; the SDKs treat a
    null source as a refused link, so the detach's error (``com.microsoft:timeout``,
    ``com.microsoft:session-cannot-be-locked``, ``amqp:not-allowed``) becomes their exception when they
    open the receiver. Echoing the client's source instead would hand back a receiver with no session, or
    one the JavaScript SDK takes as granted, and let the Python SDK peek through a receiver Azure refused.
    """
    link.source.type = Terminus.UNSPECIFIED  # proton sends an unspecified terminus as null
    link.target.copy(link.remote_target)
    link.snd_settle_mode = link.remote_snd_settle_mode
    link.rcv_settle_mode = link.remote_rcv_settle_mode
    link.open()
    link.condition = Condition(condition, description)
    link.close()


def session_properties(until_ms: int) -> dict[str, Any]:
    """The link property telling a session receiver when its session lock ends."""
    return {"com.microsoft:locked-until-utc": _EPOCH_TICKS + until_ms * 10_000}


def send_settled(link: Link, payload: bytes) -> None:
    """Send one pre-settled message (replies and receive-and-delete deliveries)."""
    delivery = link.delivery(next(_tags).to_bytes(8, "big"))  # type: ignore[arg-type] # bytes: see module doc
    link.stream(payload)
    link.advance()
    delivery.settle()


def reply(
    link: Link,
    correlation_id: object,
    application_properties: Mapping[str, Any],
    body: object = None,
) -> None:
    """Send a request-response reply (CBS or ``$management``) correlated to the request."""
    payload = (
        encode(Described(0x73, [None, None, None, None, None, correlation_id]))
        + encode(Described(0x74, dict(application_properties)))
        + encode(Described(0x77, body))
    )
    send_settled(link, payload)


class LinkConsumer:
    """A client's receiving link on one entity (and, for sessions, one session)."""

    def __init__(self, link: Link, entity: Entity, *, peek_lock: bool, session_id: str | None = None) -> None:
        self.link = link
        self.entity = entity
        self.peek_lock = peek_lock
        self.session_id = session_id
        self.closed = False

    def credit(self) -> int:
        """Credit the client granted and we have not used."""
        return 0 if self.closed else int(self.link.credit)

    def deliver(self, message: StoredMessage, payload: bytes, lock_token: bytes | None) -> None:
        """Send a message; a peek-lock delivery's tag is its lock token, as the SDK expects."""
        del message  # the payload already carries everything the client sees
        if lock_token is None:
            send_settled(self.link, payload)
            return
        delivery: Delivery = self.link.delivery(lock_token)  # type: ignore[arg-type] # the C API takes bytes
        self.link.stream(payload)
        self.link.advance()
        delivery.sb_token = lock_token
        # The settlement comes back on this delivery: finding its consumer here spares wrapping the link.
        delivery.sb_consumer = self


def outcome(delivery: Delivery) -> tuple[str, str | None, str | None]:
    """The settlement a client asked for, with a dead-letter reason and description if any."""
    state = delivery.remote_state
    if state == Delivery.ACCEPTED:
        return COMPLETE, None, None
    if state == Delivery.REJECTED:
        info = delivery.remote.condition.info if delivery.remote.condition else None
        found = {str(k): v for k, v in info.items()} if isinstance(info, dict) else {}
        return DEAD_LETTER, _opt(found.get("DeadLetterReason")), _opt(found.get("DeadLetterErrorDescription"))
    if state == Delivery.MODIFIED:
        # Service Bus reads a modified outcome by undeliverable-here alone: every SDK defers with it set
        # and abandons without it. delivery-failed tells nothing: the Python SDK sets it, the .NET SDK
        # (GetModifiedOutcome) and the JavaScript SDK leave it out, and an abandon counts either way.
        return (DEFER if delivery.remote.undeliverable else ABANDON), None, None
    return RELEASE, None, None


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def settle(delivery: Delivery, state: int) -> None:
    """Confirm a delivery with ``state`` (echoed only if the client has not settled it)."""
    if not delivery.settled:
        delivery.update(state)
    delivery.settle()


def reject(delivery: Delivery, condition: str, description: str) -> None:
    """Settle a delivery as rejected with an error the SDK turns into its exception."""
    # The SDK indexes the error's info field, so it must be on the wire (Azure sends a tracking id).
    info: dict[Any, Any] = {symbol("com.microsoft:tracking-id"): str(uuid.uuid4())}
    delivery.local.condition = Condition(condition, description, info)
    delivery.update(Delivery.REJECTED)
    delivery.settle()


def text_keys(body: object) -> dict[str, Any]:
    """A decoded map with text keys, or an empty dict for anything else."""
    return {str(k): v for k, v in body.items()} if isinstance(body, dict) else {}


def source_filters(link: Link) -> dict[Any, Any]:
    """The filter set of the client's source terminus."""
    data = link.remote_source.filter
    if data is None:
        return {}
    data.rewind()
    if data.next() is None:
        return {}
    found = data.get_object()
    return found if isinstance(found, dict) else {}


def remote_timeout_ms(link: Link, default_ms: int) -> int:
    """The operation timeout the client sent as a link property (com.microsoft:timeout)."""
    props = link.remote_properties
    value = props.get(symbol("com.microsoft:timeout")) if isinstance(props, dict) else None
    return int(value) if value else default_ms
