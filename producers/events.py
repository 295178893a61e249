"""From a source row to an envelope: change times, Dataverse's loop prevention, the envelope itself.

``source_version`` is Dataverse's ``versionnumber`` for Dataverse rows and, for F&O rows, a reading of the
F&O producer's own clock (``producers.clock``): standard F&O entities expose no modified time or modifier.
For the same reason only Dataverse changes are filtered by their modifier here; an F&O row instead carries
``base_version`` (its ``DualbusSourceVersion``), from which the consumer tells what dualbus wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from dualbus.producers.tables import SourceTable
from dualbus.shared.envelope import Envelope, Operation
from dualbus.shared.errors import EnvelopeError

__all__ = ["EchoFilter", "build_envelope", "parse_time"]

# Dataverse's lookup to the user who last changed a row.
_MODIFIED_BY = "_modifiedby_value"


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


@dataclass(frozen=True, slots=True)
class EchoFilter:
    """Recognises a Dataverse row dualbus wrote itself: its last modifier is dualbus's application user."""

    own_users: frozenset[str]

    def is_echo(self, row: Mapping[str, object]) -> bool:
        """Whether the Dataverse row's last change was dualbus's own write (and so must not travel back)."""
        modifier = row.get(_MODIFIED_BY)
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
    base_version: int | None = None,
) -> Envelope:
    """The envelope of one change of ``row``; a delete carries the key and the row's delete values only.

    A delete's ``row`` holds what is known of the gone row (its last state, a PreImage, stored values);
    values that are not known are left out, and the consumer then says why it cannot name the target row.
    """
    natural = dict(key) if key is not None else table.key_of(row)
    data = table.delete_data(row) if operation is Operation.DELETE else table.data_of(row)
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
        base_version=base_version,
    )
