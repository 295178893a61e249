"""How long one message is retried in-process: the shared retry policy with a budget and a lookup wait.

The waits are the shared policy's (``shared.retry``: exponential backoff with jitter, Retry-After honoured
up to its cap); what a consumer adds is when to stop. Transient failures are retried until
``budget_seconds`` have passed (then the message is abandoned, or dead-lettered when the failure was
unexpected); a lookup naming a row the target does not hold yet is retried for ``lookup_wait_seconds``, on
a schedule of its own (``for_lookups``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dualbus.shared.retry import RetryPolicy

__all__ = ["AwaitingLookup", "MessageRetry"]


class AwaitingLookup(Exception):  # noqa: N818 - a mark that a failure carries, not an error of its own
    """Marks a failed attempt that waits for a lookup's row: the only failure ``for_lookups`` retries."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRetry(RetryPolicy):
    """The retry policy of one message: no attempt limit, a time budget, and the late-lookup wait."""

    attempts: int | None = None
    # docs/processing.md: after the retry budget a transiently failing message is abandoned.
    budget_seconds: float = 600.0
    # How long a change whose lookup names a row the target does not hold waits for that row's own change
    # (docs/processing.md); within the budget. 0 dead-letters it at the first attempt.
    lookup_wait_seconds: float = 120.0
    # How a missing lookup is looked for again. The row it names is usually a moment behind, its change in
    # another session, so it is looked for soon and often (0.2 s doubling to 4 s, 0.2 s of jitter) rather
    # than on the backoff meant for a failing target (0.5 s doubling to 30 s, 1 s of jitter), whose third
    # try comes 3.5 s or more after the first.
    lookup_initial_wait: float = 0.2
    lookup_max_wait: float = 4.0
    lookup_jitter: float = 0.2

    def for_lookups(self) -> MessageRetry:
        """The policy for a message whose first failure was a missing lookup: its own, shorter waits (a
        policy already quicker keeps its own), the same budget and lookup wait.

        It retries only failures that still await a lookup (``AwaitingLookup``): any other ends its
        attempts, and the caller goes on under this policy's own waits, so that a target that fails once the
        row is there is not asked again every few seconds.
        """
        return replace(
            self,
            on=(AwaitingLookup,),
            initial_wait=min(self.initial_wait, self.lookup_initial_wait),
            max_wait=min(self.max_wait, self.lookup_max_wait),
            jitter=min(self.jitter, self.lookup_jitter),
        )
