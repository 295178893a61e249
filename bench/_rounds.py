"""The arithmetic of the consumer benchmark's rounds, apart from any process or socket so that it is tested.

In a round two loops run at once, each settling its own copy of the same messages; each notes the monotonic
time at which every message was settled. A loop's rate is its messages over the time from the common start
signal to its last one settled (``drain_rate``). Beside it, both rates over one common window: from the moment
both have left their start-up (a tenth of their messages settled) to the moment the first of them enters its
tail (all but a tenth settled), so that the same seconds of the same machine carry both figures. The rounds'
ratios agree when none lies further than a tolerance from their median (``spread``).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence

__all__ = ["BURST_GAP_SECONDS", "TRIM", "drain_rate", "rate_within", "settled_at", "spread", "steady_window"]

# The share of each loop's messages left out at its start (connecting, first sessions, first token) and at
# its end (the last sessions drain with fewer workers busy): neither is a per-message cost.
TRIM = 0.1
# Messages settled closer together than this form one burst (a batch settled after one reply); see
# settled_at.
BURST_GAP_SECONDS = 0.002


def drain_rate(times: Sequence[float], started: float) -> float:
    """Messages per second from ``started`` (the common start signal) to the last message settled."""
    if not times or times[-1] <= started:
        return 0.0
    return len(times) / (times[-1] - started)


def steady_window(traces: Sequence[Sequence[float]], trim: float = TRIM) -> tuple[float, float] | None:
    """The span in which every loop is past its start-up and none yet in its tail; None if there is none.

    Each trace holds one loop's settle times, in order.
    """
    if not traces or any(not times for times in traces):
        return None
    starts, ends = [], []
    for times in traces:
        cut = int(len(times) * trim)
        starts.append(times[cut])
        ends.append(times[len(times) - 1 - cut])
    start, end = max(starts), min(ends)
    return (start, end) if end > start else None


def settled_at(times: Sequence[float], at: float, gap: float = BURST_GAP_SECONDS) -> float:
    """How many messages the loop had settled at ``at``, read from its settle times (in order).

    Messages are settled in bursts (one batch's worth after one reply). Counting the steps as they fall
    would credit a window with a whole burst or none of it depending on a few microseconds at its edge, so
    the count rises in a straight line from the end of one burst to the end of the next: the work of a burst
    was done in the time since the one before.
    """
    if not times or at < times[0]:
        return 0.0
    if at >= times[-1]:
        return float(len(times))
    # The burst that ``at`` falls before: it ends at the first settle time after ``at`` that is followed
    # by a gap (or is the last).
    index = bisect.bisect_right(times, at)
    end = index
    while end + 1 < len(times) and times[end + 1] - times[end] < gap:
        end += 1
    # The end of the burst before: the last settle time at or before ``at`` that is followed by a gap.
    before = index - 1
    while before >= 0 and times[before + 1] - times[before] < gap:
        before -= 1
    if before < 0:
        # ``at`` lies within the first burst: it counts from nothing at that burst's start.
        start_time, start_count = times[0], 0
    else:
        start_time, start_count = times[before], before + 1
    share = (at - start_time) / (times[end] - start_time) if times[end] > start_time else 1.0
    return start_count + share * (end + 1 - start_count)


def rate_within(times: Sequence[float], window: tuple[float, float]) -> float:
    """Messages per second the loop settled over ``window`` (its start and end times)."""
    start, end = window
    return (settled_at(times, end) - settled_at(times, start)) / (end - start)


def spread(values: Sequence[float], tolerance: float | None = None) -> dict[str, float | bool]:
    """The median of ``values`` and how far their lowest and highest lie from it (as a share of it).

    With a ``tolerance`` (0.1 for ±10 %), also whether every value lies within it of the median.
    """
    median = statistics.median(values)
    low, high = min(values) / median - 1, max(values) / median - 1
    figures: dict[str, float | bool] = {
        "median": round(median, 3),
        "low": round(low, 3),
        "high": round(high, 3),
    }
    if tolerance is not None:
        figures["tolerance"] = tolerance
        figures["agree"] = max(-low, high) <= tolerance
    return figures
