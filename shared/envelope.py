"""The event envelope: one entity change, as producers publish it and consumers apply it.

Attribute names follow CloudEvents 1.0 where they fit (``specversion``, ``id``, ``source``, ``type``,
``time``, ``subject``, ``datacontenttype``, ``data``); the rest are dualbus's extension attributes.
See https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from dualbus.shared.errors import EnvelopeError

if TYPE_CHECKING:
    from dualbus.shared.maps import Side

__all__ = [
    "CONTENT_TYPE",
    "EARLIEST_TIME",
    "FUTURE_LEEWAY",
    "Envelope",
    "KeyValue",
    "Operation",
    "Origin",
    "envelopes_from_json",
    "event_id",
    "format_validation_error",
    "time_problem",
]

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_EVENT_NAMESPACE = uuid.UUID("2f0d6c55-91b4-4d1c-8d0e-5a3c3f6b7e21")

KeyValue = str | int
_Name = Annotated[str, Field(min_length=1, max_length=128)]
# Strict: JSON's own types only, so that `true` or `1.0` is not quietly taken for the integer 1.
_KeyPart = Annotated[StrictStr, Field(min_length=1)] | StrictInt
_Version = Annotated[StrictInt, Field(ge=0)]
# The plausible window of an event's time (docs/processing.md, Settlement): dualbus's sources hold no
# changes from before 2000, and a clock more than a day fast is a broken clock, not a future change.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_LEEWAY = timedelta(days=1)
# RFC 3339 date-time with an offset (https://www.rfc-editor.org/rfc/rfc3339#section-5.6).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: object) -> object:
    """Refuse a time that is not RFC 3339 text (pydantic would read an integer as epoch seconds)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return value
    shown = f"{type(value).__name__} {value!r:.40}"
    raise ValueError(f"must be an RFC 3339 date-time with an offset, not {shown}")


_Time = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]


class Operation(StrEnum):
    """What happened to the record at its source."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Origin(StrEnum):
    """The system a change comes from."""

    FO = "fo"
    DATAVERSE = "dataverse"

    @property
    def other(self) -> Origin:
        """The system a change from this origin is applied to."""
        return Origin.DATAVERSE if self is Origin.FO else Origin.FO

    @property
    def side(self) -> Side:
        """This system's name as the maps spell it."""
        return "fo" if self is Origin.FO else "dataverse"


def event_id(
    *, origin: Origin, entity: str, key: dict[str, KeyValue], source_version: int, operation: Operation
) -> str:
    """The deterministic id of one source change: the same change always yields the same id.

    Duplicate detection on the topic relies on it to absorb a producer's re-publish after a crash.
    """
    canonical = orjson.dumps(
        [origin.value, entity, key, source_version, operation.value], option=orjson.OPT_SORT_KEYS
    )
    return str(uuid.uuid5(_EVENT_NAMESPACE, canonical.decode()))


class Envelope(BaseModel):
    """One entity change: where it comes from, which record, which version, and its mapped fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    specversion: Literal["1.0"] = "1.0"
    id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Annotated[str, Field(min_length=1)]
    type: Annotated[str, Field(min_length=1)]
    time: _Time
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    area: _Name
    entity: _Name
    company: str | None = None
    key: Annotated[dict[str, _KeyPart], Field(min_length=1)]
    operation: Operation
    origin: Origin
    source_version: _Version
    data: dict[str, Any] = Field(default_factory=dict)
    # The other system's version this state was built on, where the source row records it (an F&O row's
    # DualbusSourceVersion: the Dataverse version dualbus last applied there). The to-dataverse consumer
    # compares it with the target row's own version to tell a concurrent edit (docs/processing.md).
    base_version: _Version | None = None
    # Set by `dualbus reconcile --repair`: re-apply the source's state even when the target already holds
    # this version (it drifted after), but never over a newer one.
    repair: StrictBool = False

    @classmethod
    def for_change(
        cls,
        *,
        origin: Origin,
        area: str,
        entity: str,
        key: dict[str, KeyValue],
        operation: Operation,
        source_version: int,
        time: datetime,
        data: dict[str, Any] | None = None,
        company: str | None = None,
        source: str | None = None,
        repair_run: str | None = None,
        base_version: int | None = None,
    ) -> Envelope:
        """Build the envelope of a source change, with its deterministic id, type and subject.

        ``repair_run`` names a reconcile run: its repairs get ids of their own, so that duplicate detection
        does not take a repair for a re-publish of the original change.
        """
        base_id = event_id(
            origin=origin, entity=entity, key=key, source_version=source_version, operation=operation
        )
        return cls(
            id=str(uuid.uuid5(_EVENT_NAMESPACE, f"{base_id}/repair/{repair_run}")) if repair_run else base_id,
            source=source or f"/{origin.value}/{entity}",
            type=f"dualbus.{area}.{operation.value}",
            time=time,
            subject=_subject(key),
            area=area,
            entity=entity,
            company=company,
            key=key,
            operation=operation,
            origin=origin,
            source_version=source_version,
            data=data or {},
            base_version=base_version,
            repair=repair_run is not None,
        )

    def to_json(self) -> bytes:
        """The envelope as CloudEvents structured-mode JSON bytes."""
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        """Parse and validate an envelope; raise EnvelopeError naming what is wrong."""
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EnvelopeError(f"the body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            kind = _JSON_KINDS.get(type(payload), "value")
            raise EnvelopeError(f"the body is a JSON {kind}, not an object")
        _refuse_repeated_names(raw, payload)
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            raise EnvelopeError(f"not a valid envelope: {format_validation_error(exc)}") from exc


_JSON_KINDS: dict[type, str] = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def envelopes_from_json(raw: bytes | str) -> list[Envelope]:
    """Parse and validate a JSON array of envelopes; raise EnvelopeError naming what is wrong.

    The CloudEvents JSON Batch Format:
    https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md#4-json-batch-format
    """
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"the body is not JSON: {exc}") from exc
    if not isinstance(payload, list) or not payload:
        kind = "an empty array" if payload == [] else f"a JSON {_JSON_KINDS.get(type(payload), 'object')}"
        raise EnvelopeError(f"the body is {kind}, not an array of envelopes")
    _refuse_repeated_names(raw, payload)
    envelopes = []
    for index, item in enumerate(payload):
        if not isinstance(item, dict):
            kind = _JSON_KINDS.get(type(item), "value")
            raise EnvelopeError(f"change {index} of the batch is a JSON {kind}, not an object")
        try:
            envelopes.append(Envelope.model_validate(item))
        except ValidationError as exc:
            problem = format_validation_error(exc)
            raise EnvelopeError(f"change {index} of the batch is not a valid envelope: {problem}") from exc
    return envelopes


def time_problem(moment: datetime, now: datetime | None = None) -> str | None:
    """Why an event time is implausible (before 2000, or more than a day ahead of ``now``), or None."""
    latest = (now or datetime.now(UTC)) + FUTURE_LEEWAY
    if moment < EARLIEST_TIME:
        return f"the event time {moment.isoformat()} is before {EARLIEST_TIME.date().isoformat()}"
    if moment > latest:
        hours = FUTURE_LEEWAY.total_seconds() / 3600
        return f"the event time {moment.isoformat()} is more than {hours:g} hours ahead of now"
    return None


def _refuse_repeated_names(raw: bytes | str, payload: dict[str, Any] | list[Any]) -> None:
    # JSON parsers keep the last of two members with one name, so the body means different things to
    # different readers (RFC 8259, section 4): refuse it rather than guess. orjson cannot report them, so
    # the standard parser looks, unless the body is what orjson writes for the parsed object (as to_json
    # bodies are): then it dropped nothing.
    try:
        if orjson.dumps(payload) == (raw.encode() if isinstance(raw, str) else bytes(raw)):
            return
        json.loads(raw, object_pairs_hook=_unique_members)
    except _RepeatedNameError as exc:
        raise EnvelopeError(f"the body is ambiguous: {exc}") from exc
    except (TypeError, RecursionError) as exc:
        # orjson reads deeper than it writes back (it raised TypeError), and so does Python's own parser.
        raise EnvelopeError("the body nests too deep to be a change") from exc


class _RepeatedNameError(ValueError):
    """A JSON object names one member twice."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        counts = Counter(name for name, _ in pairs)
        repeated = sorted(name for name, count in counts.items() if count > 1)
        raise _RepeatedNameError(f"a JSON object names {', '.join(map(repr, repeated))} more than once")
    return members


def _subject(key: dict[str, KeyValue]) -> str:
    return ",".join(f"{name}={value}" for name, value in sorted(key.items()))


def format_validation_error(exc: ValidationError, *, limit: int = 8) -> str:
    """A pydantic error as one line naming each bad field, without echoing large input values."""
    missing = [_location(e["loc"]) for e in exc.errors() if e["type"] == "missing"]
    others = [f"{_location(e['loc'])}: {e['msg']}" for e in exc.errors() if e["type"] != "missing"]
    parts = ([f"missing fields: {', '.join(missing)}"] if missing else []) + others[:limit]
    if len(others) > limit:
        parts.append(f"and {len(others) - limit} more")
    return "; ".join(parts)


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"
