"""From a source row to an envelope: version marks, change times and loop prevention.

``source_version`` follows docs/processing.md: Dataverse's ``versionnumber``; on F&O the row's
``ModifiedDateTime`` in microseconds since the epoch (the twin and F&O stamp every write).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from producers.tables import SourceTable
from shared.envelope import Envelope, Operation, Origin
from shared.errors import EnvelopeError

__all__ = ["EchoFilter", "build_envelope", "fo_version", "parse_time"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MODIFIED_BY = {Origin.FO: "ModifiedBy", Origin.DATAVERSE: "_modifiedby_value"}


def parse_time(value: object) -> datetime:
    """An aware datetime from an OData date-time value (``2024-01-31T12:00:00.123456Z``)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"not a date-time: {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EnvelopeError(f"not a date-time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def fo_version(modified: object) -> int:
    """An F&O row's version mark: its modified time in whole microseconds since the epoch."""
    delta = parse_time(modified) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class EchoFilter:
    """Recognises what dualbus wrote itself: the row's last modifier is dualbus's application user."""

    # F&O records the application (client id or user); Dataverse a systemuser id.
    own_users: frozenset[str]

    def is_echo(self, origin: Origin, row: Mapping[str, object]) -> bool:
        """Whether the row's last change was dualbus's own write (and so must not travel back)."""
        modifier = row.get(_MODIFIED_BY[origin])
        return modifier is not None and str(modifier).casefold() in self.own_users

    @classmethod
    def of(cls, *users: str | None) -> EchoFilter:
        """A filter for these user names or ids (case does not matter; None and empty are ignored)."""
        return cls(frozenset(u.casefold() for u in users if u))


def build_envelope(
    table: SourceTable,
    row: Mapping[str, object],
    operation: Operation,
    *,
    source_version: int,
    time: datetime,
    key: Mapping[str, str | int] | None = None,
) -> Envelope:
    """The envelope of one change of ``row``; a delete carries only the key (``data`` is empty)."""
    natural = dict(key) if key is not None else table.key_of(row)
    data = {} if operation is Operation.DELETE else table.data_of(row)
    return Envelope.for_change(
        origin=table.origin,
        area=table.area,
        entity=table.name,
        key=natural,
        operation=operation,
        source_version=source_version,
        time=time,
        data=data,
        company=table.company_of(natural),
    )
