"""The step every source shares: publish a batch, retried by the shared retry policy, then checkpoint.

A checkpoint is written only after the publish succeeded: a crash in between re-publishes the batch on
restart with the same deterministic ids, which duplicate detection absorbs. Nothing is checkpointed past a
change that was not published, so a restart leaves no gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualbus.producers.checkpoints import CheckpointStore, DigestChange, RowRef
from dualbus.producers.publisher import Publisher
from dualbus.shared.envelope import Envelope
from dualbus.shared.retry import RetryPolicy

__all__ = ["PUBLISH_RETRY", "Outbox", "publish_then_checkpoint"]

# A publish is retried on TransientError (Service Bus busy or unreachable); the same message ids make a
# retry harmless. Past the attempts the step fails and runs again in the next round.
PUBLISH_RETRY = RetryPolicy(attempts=8)


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
    retry: RetryPolicy = PUBLISH_RETRY,
    batched: bool = False,
) -> None:
    """Publish ``envelopes`` (retrying transient failures), then write checkpoints, index and digests.

    Without a store only the publish happens. ``batched``: many changes a message (``Publisher.publish``).
    """
    if envelopes:
        await retry.call(lambda: publisher.publish(envelopes, batched=batched))
    if store is not None:
        store.put_many(checkpoints, index=index, digests=digests)
