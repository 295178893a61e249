"""A console job's failure is shown on its page and kept in the audit trail: with its secrets masked."""

from __future__ import annotations

import threading

import pytest

from dualbus.console.jobs import Job, JobKind, Jobs, JobState
from dualbus.shared.errors import BusError

LEAKED = "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=job-secret-key"


@pytest.mark.parametrize("error", [BusError(f"cannot open {LEAKED}"), RuntimeError(f"broke on {LEAKED}")])
def test_a_failed_jobs_error_masks_a_connection_strings_key(error: Exception) -> None:
    """A misconfigured setting's connection string in the error: its key is masked, the rest told."""
    ended = threading.Event()
    seen: list[Job] = []

    def work(_job: Job) -> None:
        raise error

    def finished(job: Job) -> None:
        seen.append(job)
        ended.set()

    Jobs().start(JobKind.RECONCILE, "customer", "operator", work, finished=finished)
    assert ended.wait(10)
    [job] = seen
    assert job.state is JobState.FAILED
    assert job.error is not None
    assert "job-secret-key" not in job.error
    assert "SharedAccessKey=" in job.error
