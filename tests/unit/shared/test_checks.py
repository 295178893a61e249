"""A received message is taken only when it says what its body says, in JSON's own types, at a sane time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from dualbus.shared.envelope import EARLIEST_TIME, Envelope, Operation, Origin, time_problem
from dualbus.shared.errors import EnvelopeError, RejectedError, Rejection
from dualbus.shared.messages import checked_envelope, to_message
from dualbus.shared.routing import replay_id
from dualbus.shared.topology import ORIGINAL_ID_PROPERTY, REPLAY_COUNT_PROPERTY

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass
class Received:
    """The parts of a received message that the checks read."""

    body: bytes
    message_id: str | None
    session_id: str | None
    subject: str | None
    content_type: str | None
    application_properties: dict[Any, Any] = field(default_factory=dict)


def _envelope(**changes: Any) -> Envelope:
    return Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key={"dataAreaId": "usmf", "CustomerAccount": "US-001"},
        operation=Operation.UPDATE,
        source_version=7,
        time=NOW,
        company="USMF",
        data={"OrganizationName": "Contoso"},
    ).model_copy(update=changes)


def _received(envelope: Envelope | None = None, **changes: Any) -> Received:
    envelope = envelope or _envelope()
    sent = to_message(envelope)
    properties = {k.encode() if isinstance(k, str) else k: v for k, v in sent.application_properties.items()}
    message = Received(
        envelope.to_json(), sent.message_id, sent.session_id, sent.subject, sent.content_type, properties
    )
    return replace(message, **changes)


def _body(**changes: Any) -> bytes:
    document = _envelope().model_dump(mode="json", exclude_none=True)
    document.update(changes)
    return orjson.dumps(document)


def test_a_message_as_sent_passes_every_check() -> None:
    """What to_message sends comes back as the same envelope."""
    assert checked_envelope(_received(), now=NOW) == _envelope()


@pytest.mark.parametrize(
    "changes",
    [
        {"time": 1_700_000_000},
        {"time": "1700000000"},
        {"time": "2026-01-02T03:04:05"},
        {"time": "2026-01-02"},
        {"key": {"dataAreaId": "usmf", "CustomerAccount": True}},
        {"key": {"dataAreaId": "usmf", "CustomerAccount": 1.0}},
        {"key": {"dataAreaId": "usmf", "CustomerAccount": ""}},
        {"source_version": "7"},
        {"base_version": -1},
        {"repair": "yes"},
        {"operation": "upsert"},
        {"origin": "sap"},
        {"specversion": "2.0"},
        {"extra": 1},
    ],
)
def test_values_outside_jsons_own_types_break_the_schema(changes: dict[str, Any]) -> None:
    """An integer or naive time, a boolean key, a text version, an unknown member: each is a schema error."""
    with pytest.raises(EnvelopeError) as caught:
        Envelope.from_json(_body(**changes))
    assert isinstance(caught.value.__cause__, ValidationError)


def test_a_member_named_twice_is_refused_as_ambiguous() -> None:
    """Two members with one name could be read either way, so the body is no envelope."""
    body = _body().replace(b'"origin":"fo"', b'"origin":"fo","origin":"dataverse"')
    with pytest.raises(EnvelopeError, match="'origin' more than once") as caught:
        Envelope.from_json(body)
    assert not isinstance(caught.value.__cause__, ValidationError)


@pytest.mark.parametrize(
    ("moment", "plausible"),
    [
        (EARLIEST_TIME, True),
        (EARLIEST_TIME - timedelta(microseconds=1), False),
        (datetime(1, 1, 1, tzinfo=UTC), False),
        (datetime(1970, 1, 1, tzinfo=UTC), False),
        (NOW + timedelta(hours=23), True),
        (NOW + timedelta(days=2), False),
        (datetime(9999, 12, 31, tzinfo=UTC), False),
    ],
)
def test_the_plausible_window_is_2000_to_a_day_ahead(moment: datetime, plausible: bool) -> None:
    """Times from 2000-01-01 up to a day past now are plausible; others are named as not."""
    assert (time_problem(moment, NOW) is None) is plausible


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_received(content_type="application/json"), Rejection.WRONG_CONTENT_TYPE),
        (_received(content_type=None), Rejection.WRONG_CONTENT_TYPE),
        (_received(message_id="another"), Rejection.PROPERTY_MISMATCH),
        (_received(session_id="customer-9999"), Rejection.PROPERTY_MISMATCH),
        (_received(session_id=None), Rejection.PROPERTY_MISMATCH),
        (_received(subject="VendorsV2.update"), Rejection.PROPERTY_MISMATCH),
        (_received(application_properties={}), Rejection.PROPERTY_MISMATCH),
        (_received(_envelope(time=datetime(1970, 1, 1, tzinfo=UTC))), Rejection.IMPLAUSIBLE_TIME),
    ],
)
def test_a_message_that_disagrees_with_its_body_is_rejected(message: Received, reason: Rejection) -> None:
    """Content type, ids, session, subject, properties and time each name their own reason."""
    with pytest.raises(RejectedError) as caught:
        checked_envelope(message, now=NOW)
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("area", "vendor"),
        ("origin", "dataverse"),
        ("operation", "delete"),
        ("source_version", "8"),
        ("source_version", 7),
        ("company", "DAT"),
        ("entity", "VendorsV2"),
    ],
)
def test_each_routing_property_must_say_what_the_body_says(name: str, value: object) -> None:
    """A routing property that contradicts the body (in value or in type) is a property mismatch."""
    message = _received()
    message.application_properties[name.encode()] = value
    with pytest.raises(RejectedError, match=name) as caught:
        checked_envelope(message, now=NOW)
    assert caught.value.reason is Rejection.PROPERTY_MISMATCH


def test_a_replay_id_with_its_original_id_and_count_is_the_envelopes() -> None:
    """`dualbus dlq replay` sends <id>.replay-<n>; with the original id and count beside it, it passes."""
    envelope = _envelope()
    message = _received(message_id=f"{envelope.id}.replay-3")
    message.application_properties |= {ORIGINAL_ID_PROPERTY: envelope.id, REPLAY_COUNT_PROPERTY: 3}
    assert checked_envelope(message, now=NOW) == envelope
    message.application_properties[REPLAY_COUNT_PROPERTY] = 2
    with pytest.raises(RejectedError):
        checked_envelope(message, now=NOW)


def test_a_replay_id_with_its_body_s_digest_passes_and_a_foreign_suffix_does_not() -> None:
    """Replays are sent as <id>.replay-<n>-<digest> (``replay_id``); any other suffix is refused."""
    envelope = _envelope()
    for message_id, passes in [
        (replay_id(envelope.id, 2, b"body"), True),
        (f"{envelope.id}.replay-2-xyz", False),
        (f"{envelope.id}.replay-2-{'a' * 13}", False),
    ]:
        message = _received(message_id=message_id)
        message.application_properties |= {ORIGINAL_ID_PROPERTY: envelope.id, REPLAY_COUNT_PROPERTY: 2}
        if passes:
            assert checked_envelope(message, now=NOW) == envelope
        else:
            with pytest.raises(RejectedError):
                checked_envelope(message, now=NOW)


def test_the_content_type_compares_without_case_or_spacing() -> None:
    """Media types are case-insensitive, so the envelope's type in capitals passes."""
    message = _received(content_type="Application/CloudEvents+JSON;Charset=UTF-8")
    assert checked_envelope(message, now=NOW) == _envelope()
