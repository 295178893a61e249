"""The seam between the runtime and a target system: one change in, one result out.

A sink reads the target row, skips what docs/processing.md says to skip (stale, conflicting, already
holding the change), sends only the fields that differ, and raises dualbus errors (transient or
permanent) for the runtime to settle. Two implementations: :class:`consumers.DataverseSink` and
:class:`consumers.FoSink`.

Concurrent edits of one record on both sides converge without comparing clocks, "Dataverse wins": the F&O
sink applies every change that is not stale, and the Dataverse sink skips an F&O change when the Dataverse
row holds an edit F&O has not seen yet (that edit is on its way to F&O, where it is applied in turn).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dualbus.shared.errors import TransientError
from dualbus.shared.maps import LookupBinding, Scalar, TableMap

__all__ = ["ApplyResult", "ContendedError", "Sink", "TargetChange", "differing", "skip_reason"]


class ContendedError(TransientError):
    """A row kept changing under concurrent writers: the record is busy, the target itself answers."""


class ApplyResult(enum.StrEnum):
    """What a sink did with one change."""

    APPLIED = "applied"
    # The target already holds the change: an update that changes no mapped value, a delete of a missing row.
    UNCHANGED = "unchanged"
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
    # On an F&O change, the Dataverse version the F&O row had last received from dualbus (None: unknown):
    # the Dataverse sink's conflict rule compares it with the Dataverse row's own version.
    base_version: int | None = None
    # A reconcile repair re-applies a version the target may already hold (docs/processing.md, Repairs).
    repair: bool = False
    # The source version of this record's delete that the session's tombstones hold (None: none known).
    # The target keeps nothing of a deleted row, so this is what the stale guard compares when it is gone.
    deleted_version: int | None = None
    # Awaited just before a write to a row that exists, after every decision not to write. A session
    # records the change's version there first: the row may be deleted by the target's own users right
    # after the write, before the message is settled (and its consumer killed), and the change delivered
    # again must then find its version recorded and re-create nothing (docs/processing.md, Tombstones).
    before_update: Callable[[], Awaitable[None]] | None = None

    async def updating(self) -> None:
        """Run ``before_update``, if any: the sink is about to write to the existing row."""
        if self.before_update is not None:
            await self.before_update()

    def is_stale(self, held: object) -> bool:
        """Whether a target row holding version ``held`` makes this change stale."""
        if held is None:
            return False
        version = int(str(held))
        return version > self.source_version if self.repair else version >= self.source_version


def skip_reason(
    change: TargetChange, row: Mapping[str, object] | None, version_column: str
) -> ApplyResult | None:
    """Why a change needs no write whatever it holds (stale, or a delete of a missing row), else None.

    A missing row is judged by the record's tombstone: a delete at least as new makes the change stale,
    where without one an old update delivered again after the delete would re-create the row.
    """
    if row is None:
        if change.delete:
            return ApplyResult.UNCHANGED
        return ApplyResult.SKIPPED_STALE if change.is_stale(change.deleted_version) else None
    if change.is_stale(row.get(version_column)):
        return ApplyResult.SKIPPED_STALE
    return None


class Sink(Protocol):
    """Applies mapped changes to one target system."""

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Apply one change; raise TransientError/PermanentError (or subclasses) when it cannot be."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def differing(
    row: Mapping[str, object],
    fields: Mapping[str, Scalar | None],
    nulls: Mapping[str, Scalar] | None = None,
) -> dict[str, Scalar | None]:
    """The fields whose value differs from the row's (1 and 1.0 are equal; a missing column is None).

    ``nulls``: by field, a value the row's null stands for (F&O's "no value" of the field, which it holds
    where Dataverse holds null): a null in the row equals it.
    """
    nulls = nulls or {}
    return {
        name: value
        for name, value in fields.items()
        if not _same(current := row.get(name), value)
        and not (current is None and name in nulls and _same(nulls[name], value))
    }


def _same(current: object, wanted: object) -> bool:
    if isinstance(current, bool) or isinstance(wanted, bool):
        return current is wanted or current == wanted
    if isinstance(current, int | float) and isinstance(wanted, int | float):
        return float(current) == float(wanted)
    return current == wanted
