"""How fast this machine runs Python at the time of a benchmark, so that figures taken on different machines
(or on one machine under other load) can be set side by side.

The figure is the time of a fixed piece of pure-Python work, the kind the pipeline does per message (dicts
built and read, strings formatted and compared), the best of a few rounds: the best is the machine's speed,
the others add what else ran. The benchmarks' figures moved by nearly a factor of two between two 2-core
machines of one kind (``bench/consumer.py``'s bare loop: 2,173 and 1,291 events/s): this says which was which.
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["machine_figures", "python_work_seconds"]

_ITEMS = 20_000


def _work() -> int:
    """A fixed amount of dict and string work; returns a checksum so that none of it is skipped."""
    total = 0
    for number in range(_ITEMS):
        row = {"id": number, "name": f"customer-{number:06d}", "group": "10", "limit": number * 3}
        key = f"{row['group']}|{row['name']}".upper()
        total += len(key) + (row["limit"] if row["name"] < "customer-010000" else 0)
    return total


def python_work_seconds(rounds: int = 5) -> float:
    """The best time, in seconds, of ``rounds`` runs of the fixed work."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        _work()
        best = min(best, time.perf_counter() - started)
    return best


def machine_figures() -> dict[str, Any]:
    """CPUs, the load averages and the fixed work's best time in milliseconds."""
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "python_work_ms": round(python_work_seconds() * 1000, 1),
    }
