"""Deciding when the pipeline has drained: nothing moved for a while, and nothing is left unsettled.

A message the bus dropped as a duplicate counts as published but is never settled, so "lag is zero" alone
could wait forever; "nothing moved" alone could stop while a consumer backs off. The watch asks for both,
and accepts a longer quiet spell alone as the end.
"""

from __future__ import annotations

from collections.abc import Sequence

from dualbus.demo.stats import RouteStats

__all__ = ["DrainWatch"]


class DrainWatch:
    """Fed the figures over time; ``drained`` once they are still and settled (or still for long)."""

    def __init__(self, *, quiet: float, long_quiet: float) -> None:
        self.quiet = quiet
        self.long_quiet = long_quiet
        self._signature: tuple[tuple[int, ...], ...] | None = None
        self._still_since = 0.0

    def observe(self, now: float, stats: Sequence[RouteStats]) -> bool:
        """Record the figures seen at ``now`` (monotonic seconds); returns whether the pipeline drained."""
        signature = tuple(
            (row.published, row.skipped_echo, row.settled, row.retried, sum(row.outcomes.values()))
            for row in stats
        )
        if signature != self._signature:
            self._signature = signature
            self._still_since = now
            return False
        still = now - self._still_since
        settled = all(row.lag == 0 for row in stats)
        return (settled and still >= self.quiet) or still >= self.long_quiet
