"""A reconcile that repairs only the drifted records an operator picked from an earlier run's report.

It runs the reconcile of ``dualbus.ops.reconcile`` unchanged (same reads, same comparison, same repair
events) and lets through to the publisher only the repairs of the picked records: a record is named by its
map and natural key, which the earlier report gave (``drift_key``). Orphans are never deleted here.
"""

from __future__ import annotations

from collections.abc import Mapping

from dualbus.ops._reconcile_run import MapRun, Progress, ReconcileOptions, RunContext
from dualbus.ops.reconcile import ReconcileReport, RecordDrift, areconcile
from dualbus.shared.envelope import Envelope
from dualbus.shared.maps import TableMap
from dualbus.shared.settings import Settings

__all__ = ["drift_key", "repair_selected"]


def drift_key(drift: RecordDrift) -> str:
    """A record's name across runs: its map and natural key (keys compare without regard to case)."""
    key = ",".join(f"{name}={str(value).casefold()}" for name, value in sorted(drift.key.items()))
    return f"{drift.map_name}:{key}"


async def repair_selected(
    settings: Settings, area: str, wanted: frozenset[str], *, progress: Progress | None = None
) -> ReconcileReport:
    """Reconcile ``area`` again and republish the source state of the ``wanted`` records that still drift."""
    options = ReconcileOptions(areas=frozenset([area]), repair=True)

    def picked(context: RunContext, table_map: TableMap) -> MapRun:
        return _PickedRun(context, table_map, wanted)

    return await areconcile(settings, options, progress=progress, map_run=picked)


class _PickedRun(MapRun):
    """A map's reconcile whose repairs reach the publisher only for the picked records."""

    def __init__(self, context: RunContext, table_map: TableMap, wanted: frozenset[str]) -> None:
        super().__init__(context, table_map)
        self._wanted = wanted
        self._last: RecordDrift | None = None

    def _record(self, drift: RecordDrift) -> None:
        self._last = drift
        super()._record(drift)

    def _check(self, row: Mapping[str, object]) -> Envelope | None:
        self._last = None
        repair = super()._check(row)
        drift = self._recorded()
        if repair is None or drift is None or drift_key(drift) in self._wanted:
            return repair
        return None

    def _recorded(self) -> RecordDrift | None:
        """The drift the last check recorded (set by ``_record`` during it)."""
        return self._last
