"""The seam between the runtime and a target system: one change in, one result out.

A sink reads the target row, applies the stale guard and the last-writer-wins rule of docs/processing.md,
sends only the fields that differ, and raises dualbus errors (transient or permanent) for the runtime to
settle. Two implementations: :class:`consumers.DataverseSink` and :class:`consumers.FoSink`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.maps import LookupBinding, Scalar, TableMap

__all__ = ["ApplyResult", "RowMarks", "Sink", "TargetChange", "differing", "guard", "parse_time"]


class ApplyResult(enum.StrEnum):
    """What a sink did with one change."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # a delete of a row that is not there: the effect already holds
    SKIPPED_STALE = "skipped-stale"
    SKIPPED_CONFLICT = "skipped-conflict"


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetChange:
    """One record's change, already mapped into the target's names, with what the guards need."""

    table_map: TableMap
    key: Mapping[str, Scalar]
    fields: Mapping[str, Scalar | None] = field(default_factory=dict)
    lookups: tuple[LookupBinding, ...] = ()
    delete: bool = False
    source_version: int
    # The source change time, for last-writer-wins against edits made on the target.
    time: datetime
    # A reconcile repair re-applies a version the target may already hold (docs/processing.md, Repairs).
    repair: bool = False

    def is_stale(self, held: object) -> bool:
        """Whether a target row holding version ``held`` makes this change stale."""
        if held is None:
            return False
        version = int(str(held))
        return version > self.source_version if self.repair else version >= self.source_version


@dataclass(frozen=True, slots=True)
class RowMarks:
    """Where a target system's rows keep what the guards read: dualbus's version, last modifier and time."""

    version: str
    modified_by: str
    modified_at: str


def guard(
    change: TargetChange, row: Mapping[str, object] | None, marks: RowMarks, writer_id: str | None
) -> ApplyResult | None:
    """Why a change must not be applied (stale, conflict, nothing to delete), or None when it goes ahead.

    The stale guard and last-writer-wins of docs/processing.md, the same for every target system.
    """
    if row is None:
        return ApplyResult.UNCHANGED if change.delete else None
    if change.is_stale(row.get(marks.version)):
        return ApplyResult.SKIPPED_STALE
    modified_by, modified_at = row.get(marks.modified_by), parse_time(row.get(marks.modified_at))
    someone_else = writer_id is not None and modified_by != writer_id
    if someone_else and modified_at is not None and modified_at > change.time:
        return ApplyResult.SKIPPED_CONFLICT
    return None


class Sink(Protocol):
    """Applies mapped changes to one target system."""

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Apply one change; raise TransientError/PermanentError (or subclasses) when it cannot be."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def differing(row: Mapping[str, object], fields: Mapping[str, Scalar | None]) -> dict[str, Scalar | None]:
    """The fields whose value differs from the row's (1 and 1.0 are equal; a missing column is None)."""
    return {name: value for name, value in fields.items() if not _same(row.get(name), value)}


def _same(current: object, wanted: object) -> bool:
    if isinstance(current, bool) or isinstance(wanted, bool):
        return current is wanted or current == wanted
    if isinstance(current, int | float) and isinstance(wanted, int | float):
        return float(current) == float(wanted)
    return current == wanted


def parse_time(value: object) -> datetime | None:
    """An OData date-time value (``2026-01-02T03:04:05Z``) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
