"""A batch message carries many changes of one entity and ordering bucket, and agrees with each of them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import EnvelopeError, RejectedError, Rejection
from dualbus.shared.message_batches import (
    BATCH_CONTENT_TYPE,
    batch_id,
    checked_batch,
    envelopes_of,
    is_batch,
    to_batch_message,
)
from dualbus.shared.messages import ordering_bucket, to_message
from dualbus.shared.topology import ORIGINAL_ID_PROPERTY, REPLAY_COUNT_PROPERTY

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
BUCKETS = 4


@dataclass
class Received:
    """The parts of a received message that the checks read."""

    body: bytes
    message_id: str | None
    session_id: str | None
    subject: str | None
    content_type: str | None
    application_properties: dict[Any, Any] = field(default_factory=dict)


def _envelope(account: str, **changes: Any) -> Envelope:
    return Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key={"dataAreaId": "usmf", "CustomerAccount": account},
        operation=Operation.CREATE,
        source_version=0,
        time=NOW,
        company="USMF",
        data={"OrganizationName": f"Customer {account}"},
    ).model_copy(update=changes)


def _same_bucket(count: int) -> list[Envelope]:
    """``count`` changes of different customers that share one ordering bucket."""
    chosen: list[Envelope] = []
    number = 0
    while len(chosen) < count:
        envelope = _envelope(f"C{number:05d}")
        if ordering_bucket(envelope.area, envelope.key, BUCKETS) == "customer-0001":
            chosen.append(envelope)
        number += 1
    return chosen


def _received(envelopes: list[Envelope], **changes: Any) -> Received:
    sent = to_batch_message(envelopes, buckets=BUCKETS)
    properties = {k.encode() if isinstance(k, str) else k: v for k, v in sent.application_properties.items()}
    body = b"".join(sent.body) if not isinstance(sent.body, bytes) else sent.body
    message = Received(body, sent.message_id, sent.session_id, sent.subject, sent.content_type, properties)
    return replace(message, **changes)


def _checked(message: Received) -> list[Envelope]:
    return checked_batch(message, buckets=BUCKETS, now=NOW)  # type: ignore[arg-type]


def test_a_batch_round_trips_and_says_what_it_is() -> None:
    envelopes = _same_bucket(3)
    message = _received(envelopes)
    assert message.content_type == BATCH_CONTENT_TYPE
    assert message.session_id == "customer-0001"
    assert message.subject == "CustomersV3.batch"
    assert message.message_id == batch_id(envelopes)
    assert is_batch(message)  # type: ignore[arg-type]
    assert _checked(message) == envelopes
    assert envelopes_of(message) == envelopes  # type: ignore[arg-type]
    # The same changes always make the same id (duplicate detection absorbs a re-publish), others another.
    assert batch_id(_same_bucket(3)) == batch_id(envelopes)
    assert batch_id(envelopes[:2]) != batch_id(envelopes)


def test_a_single_change_message_is_no_batch() -> None:
    assert not is_batch(to_message(_envelope("C1")))


def test_changes_of_different_buckets_or_entities_make_no_batch() -> None:
    first = _same_bucket(1)[0]
    other_bucket = next(
        e
        for e in (_envelope(f"X{n}") for n in range(100))
        if ordering_bucket(e.area, e.key, BUCKETS) != "customer-0001"
    )
    with pytest.raises(ValueError, match="does not share"):
        to_batch_message([first, other_bucket], buckets=BUCKETS)
    with pytest.raises(ValueError, match="does not share"):
        to_batch_message([first, first.model_copy(update={"entity": "VendorsV2"})], buckets=BUCKETS)
    with pytest.raises(ValueError, match="at least one"):
        to_batch_message([], buckets=BUCKETS)


@pytest.mark.parametrize(
    ("changes", "reason", "words"),
    [
        (
            {"application_properties": {b"area": "vendor", b"entity": "CustomersV3", b"origin": "fo"}},
            Rejection.PROPERTY_MISMATCH,
            "area",
        ),
        ({"subject": "CustomersV3.update"}, Rejection.PROPERTY_MISMATCH, "subject"),
        ({"session_id": "customer-0002"}, Rejection.PROPERTY_MISMATCH, "ordering bucket"),
        ({"message_id": "made-up"}, Rejection.PROPERTY_MISMATCH, "message id"),
    ],
)
def test_a_batch_that_disagrees_with_its_changes_is_rejected(
    changes: dict[str, Any], reason: Rejection, words: str
) -> None:
    with pytest.raises(RejectedError, match=words) as raised:
        _checked(_received(_same_bucket(2), **changes))
    assert raised.value.reason is reason


def test_one_implausible_time_rejects_the_batch_naming_the_change() -> None:
    envelopes = _same_bucket(3)
    envelopes[2] = envelopes[2].model_copy(update={"time": NOW + timedelta(days=30)})
    with pytest.raises(RejectedError, match="change 2 of the batch") as raised:
        _checked(_received(envelopes))
    assert raised.value.reason is Rejection.IMPLAUSIBLE_TIME


def test_a_replayed_batch_keeps_its_id_with_the_replay_suffix() -> None:
    envelopes = _same_bucket(2)
    original = batch_id(envelopes)
    replayed = _received(envelopes, message_id=f"{original}.replay-1")
    replayed.application_properties |= {ORIGINAL_ID_PROPERTY: original, REPLAY_COUNT_PROPERTY: 1}
    assert _checked(replayed) == envelopes
    replayed.application_properties[REPLAY_COUNT_PROPERTY] = 2
    with pytest.raises(RejectedError, match="message id"):
        _checked(replayed)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"[]", "an empty array"),
        (b"{}", "not an array"),
        (b"[1]", "change 0 of the batch is a JSON number"),
        (b'[{"id": "x"}]', "change 0 of the batch is not a valid envelope"),
        (b"[nope", "not JSON"),
    ],
)
def test_a_body_that_is_no_array_of_envelopes_is_refused(body: bytes, words: str) -> None:
    with pytest.raises(EnvelopeError, match=words):
        _checked(_received(_same_bucket(1), body=body))


def test_a_batch_naming_one_member_twice_is_refused() -> None:
    document = orjson.loads(_received(_same_bucket(1)).body)[0]
    text = orjson.dumps(document).decode()
    ambiguous = ("[" + text[:-1] + ', "area": "vendor"}]').encode()
    with pytest.raises(EnvelopeError, match="more than once"):
        _checked(_received(_same_bucket(1), body=ambiguous))
