"""The step every source shares: publish a batch, retrying what a retry can fix, then checkpoint.

A checkpoint is written only after the publish succeeded: a crash in between re-publishes the batch on
restart with the same deterministic ids, which duplicate detection absorbs. Nothing is checkpointed past a
change that was not published, so a restart leaves no gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dualbus.producers.checkpoints import CheckpointStore, DigestChange, RowRef
from dualbus.producers.publisher import Publisher
from dualbus.shared.envelope import Envelope
from dualbus.shared.errors import TransientError

__all__ = ["Backoff", "Outbox", "publish_then_checkpoint", "retry_transient"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off for transient publish or read failures, honouring a server's Retry-After."""

    first: float = 0.5
    maximum: float = 30.0
    attempts: int = 8

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        wanted = min(self.maximum, self.first * 2.0 ** (attempt - 1))
        return float(max(wanted, retry_after or 0.0))


@dataclass(slots=True)
class Outbox:
    """What one step publishes and records: envelopes, checkpoints, index and digest changes, echoes."""

    envelopes: list[Envelope] = field(default_factory=list)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    index: list[tuple[str, str, RowRef | None]] = field(default_factory=list)
    digests: list[DigestChange] = field(default_factory=list)
    skipped_echo: int = 0


async def publish_then_checkpoint(
    publisher: Publisher,
    store: CheckpointStore | None,
    envelopes: Sequence[Envelope],
    checkpoints: Mapping[str, Any],
    *,
    index: Iterable[tuple[str, str, RowRef | None]] = (),
    digests: Iterable[DigestChange] = (),
    backoff: Backoff | None = None,
) -> None:
    """Publish ``envelopes`` (retrying transient failures), then write checkpoints, index and digests.

    Without a store only the publish happens.
    """
    if envelopes:
        await retry_transient(lambda: publisher.publish(envelopes), backoff or Backoff(), what="publish")
    if store is not None:
        store.put_many(checkpoints, index=index, digests=digests)


async def retry_transient(operation: Callable[[], Awaitable[_T]], policy: Backoff, *, what: str) -> _T:
    """Run ``operation``, retrying TransientError with back-off; the last failure is raised."""
    for attempt in range(1, policy.attempts):
        try:
            return await operation()
        except TransientError as exc:
            wait = policy.delay(attempt, exc.retry_after)
            _log.warning("%s failed (attempt %d), retrying in %.1fs: %s", what, attempt, wait, exc)
            await asyncio.sleep(wait)
    return await operation()
