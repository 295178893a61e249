"""A corpus of malformed messages for the customer topic, each with the dead-letter reason it must get.

Every case starts from a valid sample event and breaks one thing: the body, the message's properties, the
event's time, its key, its data or its routing. Each message carries ``corpus_case`` (its name), which a
dead letter keeps, so that a test can tell which case ended where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from azure.servicebus import ServiceBusMessage

from dualbus.shared.envelope import Envelope
from dualbus.shared.maps import MapSet
from dualbus.shared.messages import ordering_bucket, to_message
from dualbus.shared.topology import REPLAY_TARGET_PROPERTY

from .samples import event

CASE_PROPERTY = "corpus_case"
# Within Service Bus Standard's 256 KB message limit.
_HUGE = 200_000


@dataclass(frozen=True, slots=True)
class Case:
    """One malformed message, where it must end (subscription) and with which dead-letter reason."""

    name: str
    reason: str
    message: ServiceBusMessage
    subscription: str = "to-dataverse"


def _message(
    envelope: Envelope,
    name: str,
    *,
    body: bytes | None = None,
    document: Callable[[dict[str, Any]], None] | None = None,
    properties: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **overrides: Any,
) -> ServiceBusMessage:
    """``envelope`` as to_message sends it, with its JSON document, body, properties or fields changed."""
    sent = to_message(envelope)
    fields = {
        "message_id": sent.message_id,
        "session_id": sent.session_id,
        "content_type": sent.content_type,
        "subject": sent.subject,
    }
    if document is not None:
        raw = envelope.model_dump(mode="json", exclude_none=True)
        document(raw)
        body = orjson.dumps(raw)
        if isinstance(raw.get("key"), dict):
            # A changed key is another record: its own session, so that only the change itself is wrong.
            fields["session_id"] = ordering_bucket(envelope.area, raw["key"])
    props = {str(k): v for k, v in (sent.application_properties or {}).items() if str(k) not in drop}
    props.update(properties or {})
    props[CASE_PROPERTY] = name
    fields.update(overrides)
    return ServiceBusMessage(
        body if body is not None else envelope.to_json(), application_properties=props, **fields
    )


def _set(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw.update(values)


def _without(*names: str) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        for name in names:
            raw.pop(name, None)

    return edit


def _data(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["data"].update(values)


def _key(key: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw.update(key=key)


def malformed(maps: MapSet, valid: list[Envelope]) -> list[Case]:
    """Every malformed case; ``valid`` are events sent alongside, whose ids some cases reuse."""
    customers = maps["customers"]
    base = iter(range(500, 1000))

    def fo(n: int | None = None, **changes: Any) -> Envelope:
        return event(customers, "fo", n or next(base), label="bad").model_copy(update=changes)

    def case(name: str, reason: str, envelope: Envelope | None = None, **options: Any) -> Case:
        subscription = options.pop("subscription", "to-dataverse")
        return Case(name, reason, _message(envelope or fo(), name, **options), subscription)

    now = datetime.now(UTC)
    return [
        *_bodies(case),
        *_schema(case),
        *_properties(case, fo, valid[0]),
        *_times(case, fo, now),
        *_keys(case),
        *_values(case),
        *_to_fo(maps, case),
        *_unroutable(case),
    ]


def _bodies(case: Callable[..., Case]) -> list[Case]:
    reason = "InvalidEnvelope"
    return [
        case("not-json", reason, body=b"not json {"),
        case("json-array", reason, body=b"[1, 2, 3]"),
        case("json-string", reason, body=b'"an envelope"'),
        case("json-number", reason, body=b"42"),
        case("json-null", reason, body=b"null"),
        case("empty-body", reason, body=b""),
        case("not-utf8", reason, body=b'{"id": "\xff\xfe"}'),
        case("truncated", reason, body=b'{"specversion": "1.0", "id": "x", "data": {'),
        case("nan", reason, body=b'{"specversion": "1.0", "id": "x", "data": {"CreditLimit": NaN}}'),
        case("number-past-double", reason, body=b'{"specversion": "1.0", "source_version": 1e400}'),
        case("member-twice", reason, body=_twice()),
    ]


def _twice() -> bytes:
    return b'{"specversion": "1.0", "origin": "fo", "origin": "dataverse", "id": "x"}'


def _schema(case: Callable[..., Case]) -> list[Case]:
    reason = "SchemaViolation"
    pairs: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("missing-key", _without("key")),
        ("missing-time", _without("time")),
        ("missing-version", _without("source_version")),
        ("missing-id", _without("id")),
        ("version-text", _set(source_version="7")),
        ("version-negative", _set(source_version=-1)),
        ("version-fraction", _set(source_version=7.5)),
        ("key-boolean", _key({"dataAreaId": "USMF", "CustomerAccount": True})),
        ("key-fraction", _key({"dataAreaId": "USMF", "CustomerAccount": 1.5})),
        ("key-empty-text", _key({"dataAreaId": "USMF", "CustomerAccount": ""})),
        ("key-list", _set(key=["USMF", "K1"])),
        ("data-list", _set(data=[1, 2])),
        ("unknown-member", _set(colour="blue")),
        ("unknown-operation", _set(operation="upsert")),
        ("unknown-origin-in-body", _set(origin="sap")),
        ("specversion-2", _set(specversion="2.0")),
        ("other-data-content-type", _set(datacontenttype="text/xml")),
        ("repair-text", _set(repair="yes")),
        ("base-version-negative", _set(base_version=-5)),
        ("time-integer", _set(time=1_700_000_000)),
        ("time-numeric-text", _set(time="1700000000")),
        ("time-naive", _set(time="2026-01-02T03:04:05")),
        ("time-date-only", _set(time="2026-01-02")),
        ("time-words", _set(time="yesterday")),
        ("entity-empty", _set(entity="")),
    ]
    return [case(name, reason, document=edit) for name, edit in pairs]


def _properties(case: Callable[..., Case], fo: Callable[..., Envelope], valid: Envelope) -> list[Case]:
    reason = "PropertyMismatch"
    envelope = fo()
    bucket = ordering_bucket("customer", envelope.key)
    wrong_bucket = next(f"customer-{n:04d}" for n in range(32) if f"customer-{n:04d}" != bucket)
    return [
        case("content-type-json", "WrongContentType", content_type="application/json"),
        case("content-type-missing", "WrongContentType", content_type=None),
        case("content-type-text", "WrongContentType", content_type="text/plain"),
        case("content-type-xml", "WrongContentType", content_type="application/xml"),
        case("property-area", reason, properties={"area": "vendor"}),
        case("property-area-missing", reason, drop=("area",)),
        case("property-entity", reason, properties={"entity": "VendorsV2"}),
        case("property-operation", reason, properties={"operation": "delete"}),
        case("property-version", reason, properties={"source_version": "999"}),
        case("property-version-number", reason, properties={"source_version": 1}),
        case("property-company", reason, properties={"company": "DAT"}),
        case("subject-other", reason, subject="VendorsV2.delete"),
        case("message-id-other", reason, message_id="bad-message-id-other"),
        case("envelope-id-of-a-valid-event", reason, valid, message_id="bad-reused-envelope-id"),
        case("replay-id-without-original", reason, envelope, message_id=f"{envelope.id}.replay-1"),
        case("session-other-bucket", reason, envelope, session_id=wrong_bucket),
        case("session-other-area", reason, session_id="vendor-0001"),
        case("area-vendor", "Misrouted", fo(area="vendor"), properties={"area": "vendor"}),
        case("area-unknown", "Misrouted", fo(area="payroll"), properties={"area": "payroll"}),
    ]


def _times(case: Callable[..., Case], fo: Callable[..., Envelope], now: datetime) -> list[Case]:
    reason = "ImplausibleTime"
    moments = {
        "year-1": datetime(1, 1, 1, tzinfo=UTC),
        "epoch": datetime(1970, 1, 1, tzinfo=UTC),
        "before-2000": datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
        "year-9999": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        "two-days-ahead": now + timedelta(days=2),
    }
    return [case(f"time-{name}", reason, fo(time=moment)) for name, moment in moments.items()]


def _keys(case: Callable[..., Case]) -> list[Case]:
    reason = "KeyMismatch"
    pairs: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
        ("key-part-missing", _key({"CustomerAccount": "KBAD1"})),
        ("key-part-extra", _key({"dataAreaId": "USMF", "CustomerAccount": "KBAD2", "Extra": "x"})),
        ("key-part-renamed", _key({"dataAreaId": "USMF", "AccountNum": "KBAD3"})),
        ("key-number-for-text", _key({"dataAreaId": "USMF", "CustomerAccount": 4})),
        ("data-disagrees-with-key", _data(CustomerAccount="SOMEONE-ELSE")),
        ("data-key-null", _data(CustomerAccount=None)),
        ("data-key-object", _data(dataAreaId={"company": "USMF"})),
    ]
    return [case(name, reason, document=edit) for name, edit in pairs]


def _values(case: Callable[..., Case]) -> list[Case]:
    unknown, mapping = "UnknownField", "MappingError"
    pairs: list[tuple[str, str, Callable[[dict[str, Any]], None]]] = [
        ("data-unknown-field", unknown, _data(Colour="blue")),
        ("data-huge-unknown-field", unknown, _data(Notes="n" * _HUGE)),
        ("data-version-mark", unknown, _data(DualbusSourceVersion=5)),
        ("unknown-entity", mapping, _set(entity="CustomersV9")),
        ("name-over-long", mapping, _data(OrganizationName="N" * 161)),
        ("name-huge", mapping, _data(OrganizationName="N" * _HUGE)),
        ("name-number", mapping, _data(OrganizationName=42)),
        ("name-list", mapping, _data(OrganizationName=["a", "b"])),
        ("enum-unknown", mapping, _data(OnHoldStatus="Bogus")),
        ("enum-number", mapping, _data(OnHoldStatus=806380000)),
        ("yes-no-boolean", mapping, _data(CreditLimitIsMandatory=True)),
        ("money-text", mapping, _data(CreditLimit="lots")),
        ("money-boolean", mapping, _data(CreditLimit=True)),
        ("money-object", mapping, _data(CreditLimit={"amount": 1})),
        ("money-1e20", mapping, _data(CreditLimit=1e20)),
        ("money-minus-1e20", mapping, _data(CreditLimit=-1e20)),
        ("money-past-dataverse", mapping, _data(CreditLimit=100_000_000_000_001)),
        ("money-negative", mapping, _data(CreditLimit=-0.5)),
        ("lookup-to-nothing", "UnresolvedLookup", _key_and_data("ZZZZ")),
    ]
    cases = [case(name, reason, document=edit) for name, reason, edit in pairs]
    entity = next(c for c in cases if c.name == "unknown-entity")
    entity.message.application_properties["entity"] = "CustomersV9"
    entity.message.subject = "CustomersV9.update"
    return cases


def _key_and_data(company: str) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        raw["key"]["dataAreaId"] = raw["data"]["dataAreaId"] = company

    return edit


def _to_fo(maps: MapSet, case: Callable[..., Case]) -> list[Case]:
    customers = maps["customers"]

    def dv(n: int, **changes: Any) -> Envelope:
        return event(customers, "dataverse", n, label="bad").model_copy(update=changes)

    def data(n: int, **values: Any) -> Envelope:
        sample = dv(n)
        return sample.model_copy(update={"data": {**sample.data, **values}})

    to_fo = {"subscription": "to-fo"}
    return [
        case("dv-money-1e20", "MappingError", data(900, creditlimit=1e20), **to_fo),
        case("dv-money-past-money", "MappingError", data(901, creditlimit=1e15), **to_fo),
        case("dv-option-unknown", "MappingError", data(902, msdyn_onholdstatus=1), **to_fo),
        case("dv-unknown-field", "UnknownField", data(903, colour="blue"), **to_fo),
        case("dv-key-missing-part", "KeyMismatch", dv(904, key={"accountnumber": "KX"}), **to_fo),
        case("dv-content-type", "WrongContentType", dv(905), content_type="application/json", **to_fo),
        case("dv-time-epoch", "ImplausibleTime", dv(906, time=datetime(1970, 1, 1, tzinfo=UTC)), **to_fo),
        case("dv-origin-property-other", "PropertyMismatch", dv(907), properties={"origin": "fo"}),
    ]


def _unroutable(case: Callable[..., Case]) -> list[Case]:
    reason, where = "Unroutable", {"subscription": "unroutable"}
    return [
        case("origin-missing", reason, drop=("origin",), **where),
        case("origin-capitals", reason, properties={"origin": "FO"}, **where),
        case("origin-other-system", reason, properties={"origin": "sap"}, **where),
        case("origin-empty", reason, properties={"origin": ""}, **where),
        case("session-missing", reason, session_id=None, **where),
        case("replay-to-nowhere", reason, properties={REPLAY_TARGET_PROPERTY: "to-nowhere"}, **where),
        case("replay-to-other-direction", reason, properties={REPLAY_TARGET_PROPERTY: "to-fo"}, **where),
    ]
