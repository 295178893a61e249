"""Dead-letter records: selection, grouping, edits, and the replay message they turn into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from azure.servicebus.amqp import AmqpAnnotatedMessage, AmqpMessageBodyType

from dualbus.ops.audit import AuditLog
from dualbus.ops.bodies import BodyKind, MessageBody
from dualbus.ops.deadletters import (
    ORIGINAL_ID_PROPERTY,
    REPLAY_COUNT_PROPERTY,
    DeadLetter,
    DeadLetterFilter,
    apply_edits,
    edit_body,
    group_by_reason,
    parse_edits,
    replay_message,
)
from dualbus.shared.errors import ConfigError
from dualbus.shared.messages import application_properties
from dualbus.shared.routing import is_replay_id
from dualbus.shared.topology import REPLAY_TARGET_PROPERTY

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _letter(**changes: object) -> DeadLetter:
    values: dict[str, object] = {
        "area": "customer",
        "topic": "dualbus.customer",
        "subscription": "to-dataverse",
        "sequence_number": 42,
        "message_id": "m-1",
        "reason": "UnresolvedLookup",
        "description": "map 'customer', field 'SalesCurrencyCode': no transactioncurrency 'XXX'",
        "enqueued_time": NOW - timedelta(hours=2),
        "delivery_count": 1,
        "session_id": "customer-0003",
        "subject": "CustomersV3.update",
        "content_type": "application/cloudevents+json; charset=utf-8",
        "body": orjson.dumps({"id": "e1", "data": {"SalesCurrencyCode": "XXX"}}),
        "properties": {
            "origin": "fo",
            "area": "customer",
            "DeadLetterReason": "UnresolvedLookup",
            "DeadLetterErrorDescription": "...",
        },
    }
    values.update(changes)
    return DeadLetter(**values)  # type: ignore[arg-type]


def test_empty_filter_matches_nothing() -> None:
    """Without criteria or --all nothing is selected, so a bare command cannot replay everything."""
    assert DeadLetterFilter().is_empty
    assert not DeadLetterFilter().matches(_letter(), NOW)
    assert DeadLetterFilter(everything=True).matches(_letter(), NOW)


@pytest.mark.parametrize(
    ("selection", "selected"),
    [
        (DeadLetterFilter(ids=frozenset({"m-1"})), True),
        (DeadLetterFilter(ids=frozenset({"42"})), True),
        (DeadLetterFilter(ids=frozenset({"m-2"})), False),
        (DeadLetterFilter(reasons=frozenset({"UnresolvedLookup"})), True),
        (DeadLetterFilter(reasons=frozenset({"TargetRejected"})), False),
        (DeadLetterFilter(areas=frozenset({"vendor"})), False),
        (DeadLetterFilter(older_than=timedelta(hours=1)), True),
        (DeadLetterFilter(older_than=timedelta(hours=3)), False),
        # --older-than-minutes 0: every letter is at least that old (it was refused as "nothing selected").
        (DeadLetterFilter(older_than=timedelta(0)), True),
        (DeadLetterFilter(reasons=frozenset({"UnresolvedLookup"}), areas=frozenset({"vendor"})), False),
    ],
)
def test_filter_criteria_all_must_hold(selection: DeadLetterFilter, selected: bool) -> None:
    """Each criterion narrows the selection; a letter is selected only when every given one holds."""
    assert selection.matches(_letter(), NOW) is selected


def test_a_sequence_number_picks_that_letter_and_not_one_whose_message_id_spells_it() -> None:
    """A ticked letter (its sequence number alone) is not confused with a letter whose message id is the
    same digits, as an --id, which may be either, is."""
    ticked = DeadLetterFilter(sequence_numbers=frozenset({42}))
    assert not ticked.is_empty
    assert ticked.matches(_letter(), NOW)
    assert not ticked.matches(_letter(sequence_number=7, message_id="42"), NOW)
    typed = DeadLetterFilter(ids=frozenset({"42"}))
    assert typed.matches(_letter(sequence_number=7, message_id="42"), NOW)


def test_group_by_reason_counts_and_ages() -> None:
    """Groups count letters per area, subscription and reason, with the oldest and newest ages."""
    letters = [
        _letter(),
        _letter(message_id="m-2", enqueued_time=NOW - timedelta(minutes=5)),
        _letter(message_id="m-3", reason="TargetRejected"),
    ]
    groups = group_by_reason(letters, NOW)
    assert [(g.reason, g.count) for g in groups] == [("UnresolvedLookup", 2), ("TargetRejected", 1)]
    assert groups[0].oldest == timedelta(hours=2)
    assert groups[0].newest == timedelta(minutes=5)


def test_edits_parse_json_values_and_set_nested_fields() -> None:
    """`--set data.X=value` sets a nested field; JSON-looking values keep their type."""
    edits = parse_edits(["data.SalesCurrencyCode=USD", "data.CreditLimit=1500", "data.Blocked=false"])
    document = orjson.loads(apply_edits(_letter().body, edits))
    assert document["data"] == {"SalesCurrencyCode": "USD", "CreditLimit": 1500, "Blocked": False}
    assert document["id"] == "e1"


@pytest.mark.parametrize("bad", ["novalue", "=x"])
def test_malformed_edit_is_refused(bad: str) -> None:
    """An edit without a field name or '=' is a clear error."""
    with pytest.raises(ConfigError, match="field=value"):
        parse_edits([bad])


def test_editing_a_non_json_body_is_refused() -> None:
    """A body that is not a JSON object cannot be edited field by field."""
    with pytest.raises(ConfigError, match="not JSON"):
        apply_edits(b"\x00binary", {"data.x": 1})


def test_an_edit_of_a_batch_sets_the_field_in_every_change() -> None:
    """A batch's changes share entity and origin: an edit sets the field in each of them."""
    batch = orjson.dumps([{"data": {"A": 1}}, {"data": {"A": 2, "B": 3}}])
    assert orjson.loads(apply_edits(batch, {"data.A": 9})) == [{"data": {"A": 9}}, {"data": {"A": 9, "B": 3}}]
    with pytest.raises(ConfigError, match="not a JSON object"):
        apply_edits(b"[1, 2]", {"data.A": 9})
    with pytest.raises(ConfigError, match="not a JSON object"):
        apply_edits(b"7", {"data.A": 9})


def test_replay_message_keeps_body_and_properties_and_targets_its_subscription() -> None:
    """The replay carries the body, session and properties, minus the old verdict, plus replay bookkeeping."""
    letter = _letter()
    message = replay_message(letter)
    properties = application_properties(message)
    assert b"".join(message.body) == letter.body
    assert message.session_id == "customer-0003"
    assert is_replay_id(message.message_id, "m-1", 1)
    assert str(message.message_id).startswith("m-1.replay-1-")
    assert properties[REPLAY_TARGET_PROPERTY] == "to-dataverse"
    assert properties[REPLAY_COUNT_PROPERTY] == 1
    assert properties[ORIGINAL_ID_PROPERTY] == "m-1"
    assert properties["origin"] == "fo"
    assert "DeadLetterReason" not in properties


def test_second_replay_counts_up_and_keeps_the_original_id() -> None:
    """Replaying a replayed message counts up and still names the first message id."""
    letter = _letter(
        message_id="m-1.replay-1", properties={REPLAY_COUNT_PROPERTY: 1, ORIGINAL_ID_PROPERTY: "m-1"}
    )
    message = replay_message(letter)
    assert is_replay_id(message.message_id, "m-1", 2)
    assert application_properties(message)[ORIGINAL_ID_PROPERTY] == "m-1"


def test_a_replay_s_id_follows_its_body_so_an_edited_one_is_not_taken_for_a_duplicate() -> None:
    """The same letter replayed with the same body gets the same id (duplicate detection drops a resend
    after a crash); with another edit it gets another id (a corrected replay must not be dropped)."""
    letter = _letter()
    first, again = replay_message(letter), replay_message(letter)
    edited = replay_message(letter, body=edit_body(letter.message_body, {"data.SalesCurrencyCode": "USD"}))
    assert first.message_id == again.message_id
    assert edited.message_id != first.message_id
    assert is_replay_id(edited.message_id, "m-1", 1)
    assert not is_replay_id(edited.message_id, "m-1", 2)
    assert not is_replay_id("m-1.replay-1-nothex!!!!!!", "m-1", 1)


def test_export_record_inlines_json_bodies() -> None:
    """An export line holds the reason, counts and the body as JSON."""
    record = _letter().to_json()
    assert record["reason"] == "UnresolvedLookup"
    assert (record["body_kind"], record["body_encoding"]) == ("data", "json")
    assert record["body"]["data"]["SalesCurrencyCode"] == "XXX"
    assert record["replay_count"] == 0


def test_value_body_replays_as_a_value_with_the_same_identity() -> None:
    """A value body goes back as an AMQP value, with the replay's id, session, subject and properties."""
    letter = _letter(body=b"", amqp_body=MessageBody(BodyKind.VALUE, {"SalesCurrencyCode": "XXX"}))
    message = replay_message(letter)
    assert isinstance(message, AmqpAnnotatedMessage)
    assert message.body_type == AmqpMessageBodyType.VALUE
    assert message.body == {"SalesCurrencyCode": "XXX"}
    assert message.properties is not None
    assert is_replay_id(message.properties.message_id, "m-1", 1)
    assert message.properties.group_id == "customer-0003"
    assert message.application_properties is not None
    assert message.application_properties[REPLAY_TARGET_PROPERTY] == "to-dataverse"
    assert letter.to_json()["body"] == {"SalesCurrencyCode": "XXX"}


def test_replay_types_a_wide_integer_property_as_long() -> None:
    """A 64-bit application property (other clients send them) is resent typed long, not refused."""
    message = replay_message(_letter(properties={"source_version": 2**40}))
    assert application_properties(message)["source_version"] == {"TYPE": "LONG", "VALUE": 2**40}


def test_only_a_json_data_body_can_be_edited() -> None:
    """A field edit of a value or sequence body is refused; of a JSON data body it is applied."""
    with pytest.raises(ConfigError, match="AMQP value"):
        edit_body(MessageBody(BodyKind.VALUE, {"data": {}}), {"data.x": 1})
    edited = edit_body(MessageBody.data(b'{"data": {}}'), {"data.x": 1})
    assert orjson.loads(edited.joined) == {"data": {"x": 1}}


def test_audit_log_appends_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each action is one line naming the operator, the action, the outcome and the details."""
    monkeypatch.setenv("DUALBUS_OPERATOR", "ops@contoso")
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    log.record("dlq.replay", "sent", message_id="m-1")
    log.record("dlq.purge", "removed", message_id="m-2")
    lines = log.read()
    assert [(line["action"], line["outcome"], line["message_id"]) for line in lines] == [
        ("dlq.replay", "sent", "m-1"),
        ("dlq.purge", "removed", "m-2"),
    ]
    assert lines[0]["operator"] == "ops@contoso"
