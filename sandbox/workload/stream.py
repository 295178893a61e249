"""Run a planned change stream against the twins at a steady rate; stop at the plan's end or the deadline.

F&O changes go through OData (``/data/CustomersV3``, ``cross-company=true`` so any company's row can be
addressed; an enum key part as ``Microsoft.Dynamics.DataEntities.<Enum>'<member>'``). Dataverse changes go
through the Web API in the maps' columns, rows addressed by alternate key with the company's GUID
(``accounts(_msdyn_company_value=<guid>,accountnumber='US-00001')``), looked up once from cdm_companies, and
updated with ``If-Match: *`` so that an update never creates.
See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from dualbus.d365 import fo_entities, fo_key_segment
from dualbus.sandbox.workload.dataverse_shape import SHAPES, CompanyIds, key_segment, shape_row
from dualbus.sandbox.workload.errors import WorkloadError
from dualbus.sandbox.workload.generate import Dataset
from dualbus.sandbox.workload.kinds import KINDS, RecordRef
from dualbus.sandbox.workload.plan import PlannedChange, StreamConfig, plan_changes

__all__ = ["StreamSummary", "dataverse_path", "fo_path", "run_change_stream"]


@dataclass(slots=True)
class StreamSummary:
    """What the stream did: changes made per ``side.kind.op``, refusals planted per kind, failures."""

    planned: int = 0
    made: Counter[str] = field(default_factory=Counter)
    rejects: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    concurrent: int = 0
    elapsed: float = 0.0

    @property
    def total(self) -> int:
        """How many changes reached a source system."""
        return sum(self.made.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "planned": self.planned,
            "made": dict(self.made),
            "rejects": dict(self.rejects),
            "failed": dict(self.failed),
            "concurrent": self.concurrent,
            "elapsed_seconds": round(self.elapsed, 3),
        }


def fo_path(record: RecordRef) -> str:
    """The OData path of a record's F&O row, e.g. ``/data/CustomersV3(dataAreaId='usmf',...)``."""
    entity = fo_entities()[KINDS[record.kind].fo_entity]
    key = dict(zip(entity.keys, (record.company.lower(), *record.fo_key), strict=True))
    return f"/data/{entity.entity_set}({fo_key_segment(entity, key)})"


def dataverse_path(record: RecordRef, companies: CompanyIds) -> str:
    """The Web API path of a record's Dataverse row by alternate key, the company lookup by its GUID."""
    spec = KINDS[record.kind]
    table = SHAPES[spec.shape].table
    return table + key_segment(
        table, [("msdyn_company", record.company), (spec.dv_key, record.number)], companies
    )


class _Executor:
    def __init__(self, fo: httpx.Client, dataverse: httpx.Client | None) -> None:
        self.fo = fo
        self.dataverse = dataverse
        self.company_ids: dict[str, str] = {}

    def apply(self, change: PlannedChange, summary: StreamSummary) -> None:
        if change.op == "concurrent":
            # Back to back, milliseconds apart: both sides change one record before any sync can run.
            fo_ok = self._fo(change, "update", change.values)
            dv_ok = self._dataverse(change, "update", change.other_values)
            summary.concurrent += int(fo_ok and dv_ok)
            self._count(summary, f"fo.{change.kind}.update", fo_ok)
            self._count(summary, f"dataverse.{change.kind}.update", dv_ok)
            return
        write = self._fo if change.side == "fo" else self._dataverse
        ok = write(change, change.op, change.values)
        self._count(summary, f"{change.side}.{change.kind}.{change.op}", ok)
        if ok and change.reject:
            summary.rejects[change.reject] += 1

    @staticmethod
    def _count(summary: StreamSummary, kind: str, ok: bool) -> None:
        (summary.made if ok else summary.failed)[kind] += 1

    def _fo(self, change: PlannedChange, op: str, values: dict[str, Any]) -> bool:
        if op == "create":
            return self._send(self.fo, "POST", f"/data/{KINDS[change.kind].fo_entity}", json=values)
        params = {"cross-company": "true"}
        if op == "delete":
            return self._send(self.fo, "DELETE", fo_path(change.record), params=params)
        return self._send(self.fo, "PATCH", fo_path(change.record), params=params, json=values)

    def _dataverse(self, change: PlannedChange, op: str, values: dict[str, Any]) -> bool:
        if self.dataverse is None:
            return False
        shape, companies = SHAPES[KINDS[change.kind].shape], self._companies()
        if companies is None:
            return False  # Dataverse refused the read (429 under its limits): this change fails, counted
        if op == "create":
            return self._send(self.dataverse, "POST", shape.table, json=shape_row(shape, values, companies))
        path = dataverse_path(change.record, companies)
        if op == "delete":
            return self._send(self.dataverse, "DELETE", path)
        body = shape_row(shape, values, companies, create=False)
        return self._send(self.dataverse, "PATCH", path, json=body, headers={"If-Match": "*"})

    def _companies(self) -> dict[str, str] | None:
        """Dataverse's company ids by code, read once; None while Dataverse refuses the read (its service
        protection limits answer 429), so that the next change asks again."""
        if not self.company_ids:
            assert self.dataverse is not None  # noqa: S101 - only Dataverse changes ask
            params = {"$select": "cdm_companyid,cdm_companycode"}
            try:
                answer = self.dataverse.get("cdm_companies", params=params)
                if not answer.is_success:
                    return None
                rows = answer.json().get("value", [])
            except (httpx.HTTPError, ValueError) as exc:
                raise WorkloadError(f"cannot read Dataverse's companies: {exc}") from exc
            self.company_ids = {str(r["cdm_companycode"]).upper(): str(r["cdm_companyid"]) for r in rows}
        return self.company_ids

    @staticmethod
    def _send(
        client: httpx.Client,
        method: str,
        url: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> bool:
        try:
            response = client.request(method, url, json=json, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise WorkloadError(f"{method} {url} failed: {exc}") from exc
        return response.is_success


def run_change_stream(
    fo: httpx.Client,
    dataset: Dataset,
    config: StreamConfig,
    *,
    dataverse: httpx.Client | None = None,
    dataverse_seeded: bool = True,
) -> StreamSummary:
    """Make the planned changes at ``config.rate`` per second until done or ``config.duration`` is up.

    ``fo`` has the F&O twin's URL as base; ``dataverse``, when given, the Web API root (``.../v9.2/``).
    """
    plan = plan_changes(dataset, config, dataverse=dataverse is not None, dataverse_seeded=dataverse_seeded)
    summary = StreamSummary(planned=len(plan))
    executor = _Executor(fo, dataverse)
    start = time.monotonic()
    for index, change in enumerate(plan):
        due = start + index / config.rate
        now = time.monotonic()
        if now - start >= config.duration:
            break
        if due > now:
            time.sleep(due - now)
        executor.apply(change, summary)
    summary.elapsed = time.monotonic() - start
    return summary
