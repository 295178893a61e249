"""A message carrying a batch of changes (``shared.message_batches``): applied record by record, settled once.

The changes of different records run side by side and those of one record in order, as the messages of a
session's batch do (``_groups``). What an attempt finished is remembered (``BatchProgress``), so a retry
after a passing failure applies only the rest. Once nothing is left that a retry could fix, the message is
completed when every change was applied (or found applied already), and dead-lettered otherwise, naming
each change that failed and why. The changes that were applied stay applied: a replay of the dead letter
finds them applied already (the stale guard skips a version the target holds), and applies the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from dualbus.consumers._groups import record_name
from dualbus.consumers._settlement import Action, Reason, describe, verdict
from dualbus.shared.envelope import Envelope
from dualbus.shared.errors import LockLostError, PermanentError, RejectedError

__all__ = ["BatchFailedError", "BatchProgress", "apply_batch"]

# How many failed changes a dead letter's description names; the count covers the rest.
_NAMED_FAILURES = 5


@dataclass(slots=True)
class BatchProgress:
    """The outcome of each change of one message that an attempt finished, by its position in the batch."""

    outcomes: dict[int, str] = field(default_factory=dict)


class BatchFailedError(PermanentError):
    """Changes of a batch that cannot be applied, whatever a retry does; the others were applied."""


async def apply_batch(
    envelopes: Sequence[Envelope], apply: Callable[[Envelope], Awaitable[str]], progress: BatchProgress
) -> list[str]:
    """Apply the changes not finished yet; return every change's outcome, or raise what keeps one back.

    A failure a retry may fix is raised as it is (the others' progress is kept); otherwise BatchFailedError.
    """
    queues: dict[str, list[int]] = {}
    for index, envelope in enumerate(envelopes):
        if index not in progress.outcomes:
            queues.setdefault(record_name(envelope.entity, envelope.key), []).append(index)
    failures: dict[int, Exception] = {}

    async def work_through(indices: list[int]) -> None:
        for index in indices:
            try:
                progress.outcomes[index] = await apply(envelopes[index])
            except Exception as exc:  # noqa: BLE001 - judged below, together with the other changes' failures
                failures[index] = exc
                return  # the record's later changes wait for this one

    await asyncio.gather(*(work_through(indices) for indices in queues.values()))
    if failures:
        raise _failure(envelopes, failures)
    return [progress.outcomes[index] for index in range(len(envelopes))]


def _failure(envelopes: Sequence[Envelope], failures: dict[int, Exception]) -> Exception:
    for exc in failures.values():
        if isinstance(exc, LockLostError):
            return exc  # the session is gone: nothing of the message may be retried or settled here
    for exc in failures.values():
        if verdict(exc).action is Action.RETRY:
            return exc  # retried with the message; the changes already applied are not applied again
    ordered = sorted(failures.items())
    first = ordered[0][1]
    named = "; ".join(
        f"change {i} (event {envelopes[i].id}): {_reason(exc)}: {describe(exc)}"
        for i, exc in ordered[:_NAMED_FAILURES]
    )
    more = f"; and {len(ordered) - _NAMED_FAILURES} more" if len(ordered) > _NAMED_FAILURES else ""
    text = f"{len(ordered)} of {len(envelopes)} changes could not be applied (the others were): {named}{more}"
    return BatchFailedError(text, reason=_reason(first))


def _reason(exc: Exception) -> str:
    if isinstance(exc, RejectedError):
        return exc.reason.value
    return (verdict(exc).reason or Reason.UNEXPECTED_ERROR).value
