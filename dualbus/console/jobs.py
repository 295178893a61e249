"""Long actions the console starts and the pages follow: a reconcile, a repair, an initial sync.

Each runs on a thread of its own (their code is asyncio; each thread runs its own loop), so a page request
never waits for one. A job's state is read by the pages as it goes: rows read per map and per
dependency layer. One job of a kind runs per area at a time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dualbus.shared.errors import ConfigError, DualbusError
from dualbus.shared.logs import redact

__all__ = ["Job", "JobKind", "JobState", "Jobs", "LayerProgress"]


class JobKind(StrEnum):
    """What a job does."""

    RECONCILE = "reconcile"
    REPAIR = "repair"
    INITIAL_SYNC = "initial-sync"


class JobState(StrEnum):
    """Where a job is."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class LayerProgress:
    """One dependency layer of an initial sync: its areas, source rows read so far, and its step."""

    areas: list[str]
    records: int = 0
    step: str = "waiting"


@dataclass(slots=True)
class Job:
    """One started action and what it has done so far."""

    id: str
    kind: JobKind
    area: str
    who: str
    started: datetime
    state: JobState = JobState.RUNNING
    finished: datetime | None = None
    error: str | None = None
    # Rows read so far, per "map: side" (reconcile); layers in order (initial sync).
    rows: dict[str, int] = field(default_factory=dict)
    layers: list[LayerProgress] = field(default_factory=list)
    result: Any = None

    def layer_of(self, area: str) -> LayerProgress | None:
        """The layer an area is in."""
        return next((layer for layer in self.layers if area in layer.areas), None)


class Jobs:
    """Every job started since the console started, newest first."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def all(self, kind: JobKind | None = None) -> list[Job]:
        """The jobs (of one kind), newest first."""
        with self._lock:
            jobs = [job for job in self._jobs.values() if kind is None or job.kind is kind]
        return sorted(jobs, key=lambda job: job.started, reverse=True)

    def get(self, job_id: str) -> Job:
        """One job; ConfigError when there is none of that id."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ConfigError(f"no job {job_id!r} (the console forgets its jobs when it restarts)")
        return job

    def start(
        self,
        kind: JobKind,
        area: str,
        who: str,
        work: Callable[[Job], Any],
        *,
        finished: Callable[[Job], None] = lambda _job: None,
    ) -> Job:
        """Run ``work(job)`` on a thread: its return value becomes the job's result, an error its error."""
        with self._lock:
            if any(
                j.kind is kind and j.area == area and j.state is JobState.RUNNING for j in self._jobs.values()
            ):
                raise ConfigError(f"a {kind.value} of {area} is running already; wait for it to finish")
            job = Job(id=uuid.uuid4().hex[:12], kind=kind, area=area, who=who, started=datetime.now(UTC))
            self._jobs[job.id] = job
        thread = threading.Thread(
            target=self._run, args=(job, work, finished), name=f"console-{kind.value}-{area}", daemon=True
        )
        thread.start()
        return job

    @staticmethod
    def _run(job: Job, work: Callable[[Job], Any], finished: Callable[[Job], None]) -> None:
        try:
            job.result = work(job)
            job.state = JobState.DONE
        except DualbusError as exc:
            # Shown on the job's page and kept in the audit trail: a secret in it (a connection string's
            # key in a misconfigured setting) is masked, as in every error line.
            job.error, job.state = redact(str(exc)), JobState.FAILED
        except Exception as exc:  # noqa: BLE001 - a job's thread must end with its state told, whatever broke
            job.error, job.state = redact(f"unexpected {type(exc).__name__}: {exc}"), JobState.FAILED
        job.finished = datetime.now(UTC)
        finished(job)
