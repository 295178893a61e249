"""A console backend held in memory, for testing the web layer without a bus."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import SecretStr

from dualbus.console.app import ConsoleConfig, Workflows, create_app
from dualbus.console.edits import check_edits, edited_body
from dualbus.console.hosts import LOOPBACK_NAMES
from dualbus.console.jobs import Job
from dualbus.console.operations import LetterRef, ReplayPreview, RouteRow
from dualbus.console.security import SessionLimits
from dualbus.ops.deadletters import DeadLetter, ReasonGroup, group_by_reason
from dualbus.ops.dlq import OperationReport
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import load_maps

AREAS = ("currency", "customer")


def letter(sequence: int, *, currency: str = "XXX", reason: str = "UnresolvedLookup") -> DeadLetter:
    body = {
        "origin": "fo",
        "entity": "CustomersV3",
        "area": "customer",
        "key": {"dataAreaId": "usmf", "CustomerAccount": f"C-{sequence}"},
        "data": {"CustomerAccount": f"C-{sequence}", "SalesCurrencyCode": currency},
    }
    return DeadLetter(
        area="customer",
        topic="dualbus.customer",
        subscription="to-dataverse",
        sequence_number=sequence,
        message_id=f"m-{sequence}",
        reason=reason,
        description=f"currency {currency} not found",
        enqueued_time=datetime.now(UTC),
        delivery_count=1,
        session_id=f"s-{sequence}",
        subject=None,
        content_type="application/json",
        body=orjson.dumps(body),
    )


class FakeBackend:
    """Dead letters and pause states in memory; every action appends to ``trail``."""

    def __init__(self) -> None:
        self.dead = {1: letter(1), 2: letter(2)}
        self.paused: set[str] = set()
        self.trail: list[dict[str, Any]] = []
        self.maps = load_maps()
        self.fail_with: Exception | None = None
        self.job_ended = threading.Event()

    def routes(self) -> list[RouteRow]:
        if self.fail_with is not None:
            raise self.fail_with
        return [
            RouteRow(area, sub, backlog=0, dead_lettered=0, paused=None, stats=None)
            for area in AREAS
            for sub in ("to-dataverse", "to-fo")
        ]

    def set_paused(self, area: str, subscription: str, *, paused: bool, reason: str, who: str) -> None:
        route = f"{area}/{subscription}"
        (self.paused.add if paused else self.paused.discard)(route)
        self.record(who, "pause" if paused else "resume", "sent", route=route, reason=reason)

    def groups(self) -> list[ReasonGroup]:
        return group_by_reason(list(self.dead.values()), datetime.now(UTC))

    def letters(self, area: str | None, subscription: str | None, reason: str | None) -> list[DeadLetter]:
        return [
            x
            for x in self.dead.values()
            if (area is None or x.area == area)
            and (subscription is None or x.subscription == subscription)
            and (reason is None or x.reason == reason)
        ]

    def letter(self, ref: LetterRef) -> DeadLetter:
        if ref.sequence_number not in self.dead:
            raise ConfigError(f"no dead-letter {ref}")
        return self.dead[ref.sequence_number]

    def preview_replay(self, refs: Sequence[LetterRef], edits: Mapping[str, Any]) -> ReplayPreview:
        preview = ReplayPreview()
        for ref in refs:
            if ref.sequence_number in self.dead:
                found = self.dead[ref.sequence_number]
                preview.letters.append(found)
                try:
                    check_edits(found, edits)
                    preview.after[str(ref)] = edited_body(found, edits)
                except ConfigError as exc:
                    preview.problems[str(ref)] = str(exc)
        return preview

    def replay(
        self, refs: Sequence[LetterRef], edits: Mapping[str, Any], *, who: str
    ) -> dict[str, OperationReport]:
        preview = self.preview_replay(refs, edits)
        if preview.problems:
            raise ConfigError(next(iter(preview.problems.values())))
        return self._settle(refs, who, "dlq.replay")

    def purge(self, refs: Sequence[LetterRef], *, who: str) -> dict[str, OperationReport]:
        return self._settle(refs, who, "dlq.purge")

    def _settle(self, refs: Sequence[LetterRef], who: str, action: str) -> dict[str, OperationReport]:
        report = OperationReport()
        for ref in refs:
            gone = self.dead.pop(ref.sequence_number, None)
            if gone is not None:
                report.matched += 1
                report.done.append(gone.message_id)
                self.record(who, action, "done", message_id=gone.message_id)
        return {"customer/to-dataverse": report}

    def audit(self) -> list[dict[str, Any]]:
        return list(self.trail)

    def record(self, who: str, action: str, outcome: str, **details: Any) -> None:
        self.trail.append({"time": "now", "operator": who, "action": action, "outcome": outcome, **details})
        if outcome in ("finished", "failed"):
            self.job_ended.set()


class Gate:
    """Work for jobs that waits until the test lets it finish."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, *_args: object) -> str:
        if not self.release.wait(timeout=10):
            raise ConfigError("the test never released the job")
        return "done"


def make_app(
    backend: FakeBackend,
    *,
    token: str | None = None,
    gate: Gate | None = None,
    sessions: SessionLimits | None = None,
    allowed_hosts: tuple[str, ...] | None = None,
):
    work = gate or Gate()
    flows = Workflows(
        reconcile=work, repair=lambda _records, job: work(job), sync=lambda _o, _deep, job: work(job)
    )
    config = ConsoleConfig(
        areas=AREAS,
        operator="os-user",
        token=SecretStr(token) if token else None,
        sessions=sessions or SessionLimits(),
        allowed_hosts=allowed_hosts or LOOPBACK_NAMES,
    )
    return create_app(backend, flows, config)


def job_done(job: Job) -> bool:
    return job.finished is not None
