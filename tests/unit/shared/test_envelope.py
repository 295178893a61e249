"""The envelope validates itself, has deterministic ids, and survives a trip through a Service Bus message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.servicebus import ServiceBusMessage
from hypothesis import given
from hypothesis import strategies as st

from dualbus.shared.envelope import Envelope, Operation, Origin, envelopes_from_json, event_id
from dualbus.shared.errors import EnvelopeError
from dualbus.shared.maps import other_side
from dualbus.shared.messages import application_properties, envelope_from_message, ordering_bucket, to_message
from dualbus.shared.topology import Direction

_names = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=20)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=10,
)
# hypothesis takes naive bounds and adds the zone itself.
_times = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
envelopes = st.builds(
    Envelope.for_change,
    origin=st.sampled_from(Origin),
    area=st.sampled_from(["company", "customer", "vendor", "product", "currency"]),
    entity=_names,
    key=st.dictionaries(
        _names, st.text(min_size=1, max_size=20) | st.integers(0, 10**9), min_size=1, max_size=3
    ),
    operation=st.sampled_from(Operation),
    source_version=st.integers(0, 2**62),
    time=_times,
    data=st.dictionaries(_names, _json_values, max_size=5),
    company=st.none() | st.text(min_size=1, max_size=4),
)


def _envelope(**changes: object) -> Envelope:
    values: dict[str, object] = {
        "origin": Origin.FO,
        "area": "customer",
        "entity": "CustomersV3",
        "key": {"dataAreaId": "usmf", "CustomerAccount": "US-001"},
        "operation": Operation.UPDATE,
        "source_version": 7,
        "time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "company": "usmf",
        "data": {"OrganizationName": "Contoso"},
    }
    values.update(changes)
    return Envelope.for_change(**values)  # type: ignore[arg-type]


@given(envelopes)
def test_message_round_trip_is_identity(envelope: Envelope) -> None:
    """Envelope → message → envelope gives back the same envelope."""
    assert envelope_from_message(to_message(envelope)) == envelope


@given(envelopes)
def test_json_round_trip_is_identity(envelope: Envelope) -> None:
    """Envelope → JSON → envelope gives back the same envelope."""
    assert Envelope.from_json(envelope.to_json()) == envelope


def test_same_change_same_id_and_different_change_different_id() -> None:
    """The id depends only on the source change, so a re-publish is a duplicate and a new version is not."""
    first = _envelope()
    again = _envelope(time=datetime(2030, 1, 1, tzinfo=UTC), data={"other": 1})
    newer = _envelope(source_version=8)
    assert first.id == again.id
    assert first.id != newer.id
    assert first.id != _envelope(operation=Operation.DELETE).id
    assert first.id != _envelope(origin=Origin.DATAVERSE).id


def test_event_id_ignores_key_order() -> None:
    """A key given in another order is the same record, hence the same id."""
    common = {"origin": Origin.FO, "entity": "E", "source_version": 1, "operation": Operation.CREATE}
    assert event_id(key={"a": "1", "b": "2"}, **common) == event_id(key={"b": "2", "a": "1"}, **common)  # type: ignore[arg-type]


def test_message_carries_ids_session_and_routing_properties() -> None:
    """The message id is the event id, the session is the record's bucket, routing fields are properties."""
    envelope = _envelope()
    message = to_message(envelope)
    assert message.message_id == envelope.id
    assert message.session_id == ordering_bucket("customer", envelope.key)
    properties = application_properties(message)
    assert properties["area"] == "customer"
    assert properties["origin"] == "fo"
    assert properties["operation"] == "update"
    assert properties["company"] == "usmf"
    assert properties["source_version"] == "7"


def test_versions_past_32_bits_are_sent() -> None:
    """An F&O version in microseconds since the epoch is sent as text (the SDK caps ints at 32 bits)."""
    message = to_message(_envelope(source_version=1_795_626_947_123_456))
    assert application_properties(message)["source_version"] == "1795626947123456"
    assert envelope_from_message(message).source_version == 1_795_626_947_123_456


def test_ordering_bucket_is_stable_and_bounded() -> None:
    """A record always lands in the same bucket, and buckets stay within the configured count."""
    key = {"dataAreaId": "usmf", "CustomerAccount": "US-001"}
    assert ordering_bucket("customer", key) == ordering_bucket("customer", dict(reversed(key.items())))
    buckets = {ordering_bucket("customer", {"k": str(i)}, buckets=4) for i in range(200)}
    assert buckets == {f"customer-{n:04d}" for n in range(4)}


def test_naive_time_is_refused() -> None:
    """A time without a zone is ambiguous and refused."""
    with pytest.raises(ValueError, match="time"):
        _envelope(time=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


def test_other_zones_are_accepted() -> None:
    """Any aware time is accepted."""
    assert _envelope(time=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))).time.utcoffset()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON array, not an object"),
        (b"{}", "missing fields: id, source"),
        (b'{"id": "x", "operation": "upsert"}', "operation"),
        (b"", "empty body"),
    ],
)
def test_invalid_message_names_the_problem(body: bytes, expected: str) -> None:
    """A message that is not a valid envelope raises EnvelopeError saying what is wrong."""
    with pytest.raises(EnvelopeError, match=expected):
        envelope_from_message(ServiceBusMessage(body))


def test_unknown_field_is_refused() -> None:
    """A field the envelope does not define is refused rather than silently dropped."""
    raw = _envelope().model_dump(mode="json") | {"surprise": 1}
    with pytest.raises(EnvelopeError, match="surprise"):
        Envelope.from_json(__import__("orjson").dumps(raw))


def test_origin_other_is_the_opposite_system() -> None:
    """Changes from one system are applied to the other."""
    assert Origin.FO.other is Origin.DATAVERSE
    assert Origin.DATAVERSE.other is Origin.FO


def test_an_origin_names_its_side_as_the_maps_spell_it() -> None:
    """The maps name the systems ``fo`` and ``dataverse``; an origin and a direction say which is which."""
    assert (Origin.FO.side, Origin.DATAVERSE.side) == ("fo", "dataverse")
    for origin in Origin:
        assert other_side(origin.side) == origin.other.side
    assert (Direction.TO_DATAVERSE.origin.side, Direction.TO_DATAVERSE.target.side) == ("fo", "dataverse")
    assert (Direction.TO_FO.origin.side, Direction.TO_FO.target.side) == ("dataverse", "fo")


def test_repair_has_its_own_id_and_flag() -> None:
    """A repair of a change is not a duplicate of the change, and two runs' repairs differ too."""
    original = _envelope()
    repair = _envelope(repair_run="run-1")
    assert repair.repair
    assert not original.repair
    assert repair.id != original.id
    assert repair.id == _envelope(repair_run="run-1").id
    assert repair.id != _envelope(repair_run="run-2").id


def test_a_body_nested_deeper_than_can_be_written_back_is_an_envelope_error() -> None:
    """orjson reads 1024 levels but writes back 254: the check for repeated names raised TypeError, which
    the consumer retried as unexpected for its whole budget instead of dead-lettering the body at once."""
    deep = b'{"x": ' * 300 + b"1" + b"}" * 300
    raw = b'{"specversion": "1.0", "data": ' + deep + b"}"
    with pytest.raises(EnvelopeError, match="nests too deep"):
        Envelope.from_json(raw)
    with pytest.raises(EnvelopeError, match="nests too deep"):
        envelopes_from_json(b"[" + raw + b"]")
