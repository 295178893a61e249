"""How long one message is retried in-process: the shared retry policy with a budget and a lookup wait.

The waits are the shared policy's (``shared.retry``: exponential backoff with jitter, Retry-After honoured
up to its cap); what a consumer adds is when to stop. Transient failures are retried until
``budget_seconds`` have passed (then the message is abandoned, or dead-lettered when the failure was
unexpected); a lookup naming a row the target does not hold yet is retried for ``lookup_wait_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from dualbus.shared.retry import RetryPolicy

__all__ = ["MessageRetry"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRetry(RetryPolicy):
    """The retry policy of one message: no attempt limit, a time budget, and the late-lookup wait."""

    attempts: int | None = None
    # docs/processing.md: after the retry budget a transiently failing message is abandoned.
    budget_seconds: float = 600.0
    # How long a change whose lookup names a row the target does not hold waits for that row's own change
    # (docs/processing.md); within the budget. 0 dead-letters it at the first attempt.
    lookup_wait_seconds: float = 120.0
