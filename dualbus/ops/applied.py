"""Waiting until the consumers applied what was published: the areas' subscriptions hold nothing more."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from dualbus.shared.bus_admin import AdminCounts
from dualbus.shared.errors import TransientError
from dualbus.shared.topology import Direction, Topology

__all__ = ["wait_applied"]

_POLL_SECONDS = 1.0


def wait_applied(
    counts: AdminCounts,
    topology: Topology,
    areas: Iterable[str],
    direction: Direction,
    *,
    timeout: float,
    report: Callable[[int], None] = lambda _: None,
) -> None:
    """Return once no message waits on ``direction``'s subscription of any of ``areas``.

    ``report`` hears how many still wait, each poll. TransientError when ``timeout`` passes first: the
    consumers are not running, or are far behind.
    """
    routes = [
        (topology.topic(area).name, topology.topic(area).subscription(direction).name) for area in areas
    ]
    deadline = time.monotonic() + timeout
    while True:
        waiting = sum(counts.subscription(topic, subscription).active for topic, subscription in routes)
        report(waiting)
        if waiting == 0:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(f"{topic}/{subscription}" for topic, subscription in routes)
            raise TransientError(
                f"{waiting} message(s) still wait on {names} after {timeout:.0f} s: are the "
                f"{direction.value} consumers running?"
            )
        time.sleep(_POLL_SECONDS)
