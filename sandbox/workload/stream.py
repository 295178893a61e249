"""Run a planned change stream against the twins at a steady rate; stop at the plan's end or the deadline.

F&O changes go through OData (``/data/CustomersV3``, ``cross-company=true`` so any company's row can be
addressed); Dataverse changes through the Web API, addressing accounts by their alternate key
(``accounts(msdyn_company=<id>,accountnumber='...')``) with ``If-Match: *`` so an update never creates.
See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from sandbox.workload.dataverse_shape import to_dataverse
from sandbox.workload.generate import Dataset
from sandbox.workload.kinds import KINDS
from sandbox.workload.load import WorkloadError
from sandbox.workload.plan import PlannedChange, StreamConfig, plan_changes

__all__ = ["StreamSummary", "run_change_stream"]


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
        spec, (company, account) = KINDS[change.kind], change.key
        collection = f"/data/{spec.fo_entity}"
        path = f"{collection}(dataAreaId='{company.lower()}',{spec.fo_key}='{account}')"
        params = {"cross-company": "true"}
        if op == "create":
            return self._send(self.fo, "POST", collection, json=values)
        if op == "delete":
            return self._send(self.fo, "DELETE", path, params=params)
        return self._send(self.fo, "PATCH", path, params=params, json=values)

    def _dataverse(self, change: PlannedChange, op: str, values: dict[str, Any]) -> bool:
        if self.dataverse is None:
            return False
        spec, (company, account) = KINDS[change.kind], change.key
        if op == "create":
            return self._send(self.dataverse, "POST", spec.dv_set, json=to_dataverse(change.kind, values))
        path = f"{spec.dv_set}(msdyn_company={self._company_id(company)},{spec.dv_key}='{account}')"
        if op == "delete":
            return self._send(self.dataverse, "DELETE", path)
        return self._send(self.dataverse, "PATCH", path, json=values, headers={"If-Match": "*"})

    def _company_id(self, code: str) -> str:
        if code not in self.company_ids:
            assert self.dataverse is not None  # noqa: S101 - only Dataverse changes ask
            params = {"$select": "cdm_companyid,cdm_companycode", "$filter": f"cdm_companycode eq '{code}'"}
            rows = self.dataverse.get("cdm_companies", params=params).json().get("value", [])
            if not rows:
                raise WorkloadError(f"company {code} is missing in Dataverse: seed the reference data first")
            self.company_ids[code] = str(rows[0]["cdm_companyid"])
        return self.company_ids[code]

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
