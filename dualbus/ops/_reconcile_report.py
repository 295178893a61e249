"""What a reconcile run found: drift counts per area and company, drifted records, rows it could not map."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from dualbus.ops._reconcile_compare import DriftKind, RecordDrift
from dualbus.shared.maps import Side

__all__ = ["AreaSummary", "MapSummary", "ReconcileReport", "RowProblem"]


@dataclass(slots=True)
class AreaSummary:
    """Counts for one area and company (``None`` for rows that belong to no company)."""

    area: str
    company: str | None
    compared: int = 0
    missing_in_fo: int = 0
    missing_in_dataverse: int = 0
    differing: int = 0
    problems: int = 0

    @property
    def drifted(self) -> int:
        """Records that are missing on a side or differ."""
        return self.missing_in_fo + self.missing_in_dataverse + self.differing


@dataclass(slots=True)
class MapSummary:
    """One map's run: which side was the source, rows read on each side, drift found and repairs sent."""

    name: str
    area: str
    source: Side
    fo_rows: int = 0
    dataverse_rows: int = 0
    drifted: int = 0
    repairs: int = 0


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row the map cannot transform (so cannot be compared or repaired), with the reason."""

    map_name: str
    area: str
    side: Side
    row: str
    message: str


@dataclass(slots=True)
class ReconcileReport:
    """The outcome of one run; ``has_drift`` decides the command's exit code."""

    run_id: str
    started: datetime
    finished: datetime | None = None
    maps: list[MapSummary] = field(default_factory=list)
    drifts: list[RecordDrift] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    # Drifted records counted but not listed (beyond the per-map detail limit).
    unlisted: int = 0
    repairs_published: int = 0
    deletes_published: int = 0
    # Records missing on their source side left in place (no --delete-orphans, or one of the next).
    orphans_kept: int = 0
    # Of those, records of two-way maps that dualbus never wrote (no version mark): perhaps new records on
    # their way to the source side, so never deleted, even with --delete-orphans.
    orphans_never_synced: int = 0
    _areas: dict[tuple[str, str | None], AreaSummary] = field(default_factory=dict, repr=False)

    @property
    def has_drift(self) -> bool:
        """Whether anything is out of step: a missing or differing record, or a row that cannot be mapped."""
        return any(s.drifted or s.problems for s in self._areas.values())

    @property
    def summaries(self) -> list[AreaSummary]:
        """Per area and company, in the order areas were reconciled, companies sorted (shared rows first)."""
        order = {area: index for index, area in enumerate(dict.fromkeys(a for a, _ in self._areas))}
        return sorted(self._areas.values(), key=lambda s: (order[s.area], s.company or ""))

    def area(self, area: str, company: str | None) -> AreaSummary:
        """The summary of one area and company, created on first use."""
        return self._areas.setdefault((area, company), AreaSummary(area, company))

    def count(self, drift: RecordDrift) -> None:
        """Add one drifted record to its area's counts."""
        summary = self.area(drift.area, drift.company)
        if drift.kind is DriftKind.MISSING_IN_FO:
            summary.missing_in_fo += 1
        elif drift.kind is DriftKind.MISSING_IN_DATAVERSE:
            summary.missing_in_dataverse += 1
        else:
            summary.differing += 1

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (``--json``)."""
        return {
            "run_id": self.run_id,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "drift": self.has_drift,
            "summary": [{**asdict(s), "drifted": s.drifted} for s in self.summaries],
            "maps": [asdict(m) for m in self.maps],
            "records": [_drift_dict(d) for d in self.drifts],
            "unlisted": self.unlisted,
            "problems": [asdict(p) for p in self.problems],
            "repairs_published": self.repairs_published,
            "deletes_published": self.deletes_published,
            "orphans_kept": self.orphans_kept,
            "orphans_never_synced": self.orphans_never_synced,
        }


def _drift_dict(drift: RecordDrift) -> dict[str, Any]:
    return {
        "map": drift.map_name,
        "area": drift.area,
        "company": drift.company,
        "key": drift.key,
        "kind": drift.kind.value,
        "fields": [{"field": f.field, "fo": f.fo, "dataverse": f.dataverse} for f in drift.fields],
    }
