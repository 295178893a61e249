"""The event envelope: one entity change, as producers publish it and consumers apply it.

Attribute names follow CloudEvents 1.0 where they fit (``specversion``, ``id``, ``source``, ``type``,
``time``, ``subject``, ``datacontenttype``, ``data``); the rest are dualbus's extension attributes.
See https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared.errors import EnvelopeError

__all__ = [
    "CONTENT_TYPE",
    "Envelope",
    "KeyValue",
    "Operation",
    "Origin",
    "event_id",
    "format_validation_error",
]

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
_EVENT_NAMESPACE = uuid.UUID("2f0d6c55-91b4-4d1c-8d0e-5a3c3f6b7e21")

KeyValue = str | int
_Name = Annotated[str, Field(min_length=1, max_length=128)]


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
    time: AwareDatetime
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    area: _Name
    entity: _Name
    company: str | None = None
    key: Annotated[dict[str, KeyValue], Field(min_length=1)]
    operation: Operation
    origin: Origin
    source_version: Annotated[int, Field(ge=0)]
    data: dict[str, Any] = Field(default_factory=dict)
    # The other system's version this state was built on, where the source row records it (an F&O row's
    # DualbusSourceVersion: the Dataverse version dualbus last applied there). The to-dataverse consumer
    # compares it with the target row's own version to tell a concurrent edit (docs/processing.md).
    base_version: Annotated[int, Field(ge=0)] | None = None
    # Set by `dualbus reconcile --repair`: re-apply the source's state even when the target already holds
    # this version (it drifted after), but never over a newer one.
    repair: bool = False

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
            raise EnvelopeError(f"the body is a JSON {type(payload).__name__}, not an object")
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            raise EnvelopeError(f"not a valid envelope: {format_validation_error(exc)}") from exc


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
