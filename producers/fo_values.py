"""Attribute values of a data event's Target or PreImage, decoded into the values F&O's OData would show.

A RemoteExecutionContext is written by .NET's DataContractJsonSerializer: a date-time is
``"/Date(<ms since the epoch>[+-hhmm])/"`` (the offset only says where it was local; the milliseconds are
UTC), a lookup an ``EntityReference`` object, a choice an ``OptionSetValue`` object (``{"__type":
"OptionSetValue:...", "Value": n}``). See the documented example
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md

F&O enums become Dataverse option sets matched "by using the External Name property of values", and
"Enum integer values in Dataverse aren't guaranteed to be stable between the systems":
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/a54c1253b5bbacea156e32bd50798b56c344c72c/articles/fin-ops-core/dev-itpro/power-platform/entity-modeling.md
so an enum is read from the entity's ``FormattedValues`` (the member's name) and never from its integer;
without a usable formatted value the attribute counts as not carried (the row is read back over OData).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from dualbus.d365 import FoEntity, FoField
from dualbus.producers.errors import InvalidDataEventError

__all__ = ["UNKNOWN", "decode_value", "parse_wcf_date"]

_WCF_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATES = frozenset({"Edm.DateTimeOffset", "Edm.Date"})
# How much of a text that is no date an error shows: a 400's body and a dead-letter's description stay short.
_SHOWN = 64


class _Unknown:
    """The marker of an attribute whose F&O value cannot be told from the payload."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


def parse_wcf_date(text: str, where: str) -> datetime:
    """A ``/Date(ms)/`` or ISO 8601 text as an aware UTC datetime; InvalidDataEventError otherwise, also for
    a date outside years 1 to 9999 in UTC."""
    try:
        return _utc_moment(text)
    except (ValueError, OverflowError):
        # ValueError: not a date, or more digits than int() reads (4,300); OverflowError: past what a
        # timedelta or a datetime holds. Either is a payload no retry makes usable (400, dead-lettered).
        shown = f"{text[:_SHOWN]!r}..." if len(text) > _SHOWN else repr(text)
        raise InvalidDataEventError(f"{where} is not a date-time: {shown}") from None


def _utc_moment(text: str) -> datetime:
    match = _WCF_DATE.match(text)
    if match is not None:
        return _EPOCH + timedelta(milliseconds=int(match.group(1)))
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def decode_value(entity: FoEntity, field: FoField, raw: object, formatted: str | None, where: str) -> object:
    """The OData value of one attribute, or UNKNOWN when the payload does not tell it."""
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        return _decode_object(entity, field, raw, formatted, where)
    if field.enum is not None:
        return _member(entity, field, formatted or (raw if isinstance(raw, str) else None))
    if field.type in _DATES and isinstance(raw, str):
        return _odata_date(field, parse_wcf_date(raw, where))
    if isinstance(raw, list):
        return UNKNOWN
    return raw


def _decode_object(
    entity: FoEntity, field: FoField, raw: Mapping[str, object], formatted: str | None, where: str
) -> object:
    kind = raw.get("__type")
    if not isinstance(kind, str):
        raise InvalidDataEventError(f"{where} is an object without a __type: {sorted(raw)}")
    if kind.startswith("OptionSetValue:"):
        value = raw.get("Value")
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidDataEventError(f"{where} is an OptionSetValue without an integer Value")
        return _member(entity, field, formatted) if field.enum is not None else (formatted or UNKNOWN)
    if kind.startswith("Money:"):
        return raw.get("Value")
    # An EntityReference points at a Dataverse row, which is no F&O field value; other types are unknown.
    return UNKNOWN


def _member(entity: FoEntity, field: FoField, formatted: str | None) -> object:
    members = entity.enums.get(field.enum or "", ())
    wanted = (formatted or "").casefold()
    return next((member for member in members if member.casefold() == wanted), UNKNOWN)


def _odata_date(field: FoField, moment: datetime) -> str:
    if field.type == "Edm.Date":
        return moment.date().isoformat()
    precision = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=precision).replace("+00:00", "Z")
