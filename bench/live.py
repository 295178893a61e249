"""Sustained live changes on both sides and how long each takes from its source to the other side.

The pipeline runs as the demo runs it (``dualbus.demo``'s launcher: the emulator, both twins with their
service protection limits on, one consumer process per area and direction, both producers, F&O data events
on a webhook), after the initial sync. Then, for each rate, changes are made for ``--warm-up`` and then
``--seconds`` more on F&O and Dataverse alike (half each, as people would make them: each change stream as
a workload user of its own, the next one in turn, since Dataverse limits each user's requests), the
pipeline is left to drain, and the figures of that phase are printed as one JSON document:

- per direction, p50 / p95 / p99 change → applied: from the change's time at its source (the envelope's
  ``time``) to the target's answer to the write, read off the consumers' live-traffic histograms (explicit
  buckets from 1 ms to 60 s; initial-sync and repair traffic are kept apart), of what was applied after
  the warm-up: the rate sustained;
- the same for what was applied during the warm-up (``warm_up``), apart: the first changes after a quiet
  spell wait for the Dataverse producer's next read of their table (once a second per quiet table, the
  producer's ``poll_interval_seconds``) and for the consumers to take the sessions they come in, so they
  say how fast the pipeline wakes, not what it sustains (``--warm-up 0`` counts the whole phase as one);
- the backlog: messages published and not yet settled, at its highest during the phase (warm-up included)
  and when the changes stopped, and how long the pipeline took to drain after;
- what the change stream achieved over the whole phase, warm-up included (changes made, its real rate,
  refusals by the twins);
- whether the phase met the mark: p99 within 1 s each way (``p99_within_1s``), at the rate asked for
  (``rate_reached``: 95 % of it or more);
- and, once, how fast the machine ran Python before the pipeline started (``bench/_machine.py``).

Run from the repository root: python bench/live.py [--rates 50,200,500] [--seconds 60] [--warm-up 5]
[--quick] (``--quick``: 50 and 200 changes/s for 15 s each, after the warm-up). Bounded: every wait has
a deadline. The split between warm-up and what follows is as sharp as the metrics files: the monitor reads
them every half second, and each process writes its own every second.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

if __package__ in {None, ""}:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import machine_figures
from dualbus.demo.drain import DrainWatch
from dualbus.demo.environment import Endpoints
from dualbus.demo.launch import Launcher
from dualbus.demo.monitor import HeadlessView, Monitor
from dualbus.demo.run import PER_BUCKET, check_health, run_initial_sync, signals_interrupt, start_pipeline
from dualbus.demo.stats import RouteStats, latency_by_direction
from dualbus.demo.workload import DataSize, StreamThread
from dualbus.sandbox.workload import StreamConfig, StreamSummary

_DIRECTIONS = ("to-dataverse", "to-fo")
_QUICK_RATES = (50, 200)
_QUICK_SECONDS = 15.0
# One change stream makes its HTTP calls one after another; several share a rate above this.
_RATE_PER_STREAM = 50.0
_TICK_SECONDS = 0.5
_DRAIN_TIMEOUT_SECONDS = 180.0
# Long enough for every table to have been read at its busy pace and every busy session to be taken: in
# runs at 200 changes/s from quiet, the changes over 1 s all came in the first 1 to 8 seconds.
_WARM_UP_SECONDS = 5.0
_P99_TARGET = 1.0
# A phase reached its rate when its streams made at least this share of it (they start a little late).
_RATE_REACHED = 0.95


def _backlog(stats: Sequence[RouteStats]) -> dict[str, int]:
    return {d: sum(row.lag for row in stats if row.direction == d) for d in _DIRECTIONS}


def _stream_count(rate: float) -> int:
    """How many change streams make ``rate`` changes/s together."""
    return max(1, math.ceil(rate / _RATE_PER_STREAM))


def _streams(
    endpoints: Endpoints, lanes: _Lanes, *, seed: int, size: DataSize, rate: float, seconds: float
) -> list[StreamThread]:
    """Enough change streams to make ``rate`` changes/s together, each with a plan, a lane and a user of
    its own."""
    count = _stream_count(rate)
    first = lanes.taken
    lanes.taken += count
    return [
        StreamThread(
            endpoints,
            client_id=next(lanes.users),
            seed=seed,  # the seeded dataset: the streams change records that exist
            size=size,
            config=StreamConfig(
                seed=seed * 1_000 + int(rate) * 10 + index,
                rate=rate / count,
                duration=seconds,
                max_changes=int(rate / count * seconds) + 1,
                reject_share=0.0,  # refusals would be dead-lettered: they say nothing about latency
                concurrent_share=0.0,
                # Each stream its own records and new keys, over all phases: streams sharing them failed
                # half their changes (a create of a key another had made, an update of a row another had
                # deleted), and so did a phase after one that had deleted and created in the same lane.
                lane=first + index,
                lanes=lanes.total,
            ),
        )
        for index in range(count)
    ]


@dataclass(slots=True)
class _Lanes:
    """The lanes of the dataset over all phases, one per stream, and the workload users taken in turn."""

    total: int
    users: Iterator[str]
    taken: int = 0


def _phase(
    monitor: Monitor,
    endpoints: Endpoints,
    lanes: _Lanes,
    *,
    seed: int,
    size: DataSize,
    rate: float,
    seconds: float,
    warm_up: float,
) -> dict[str, Any]:
    """One rate: make changes for ``warm_up`` and ``seconds`` more, wait for the drain, return the phase's
    figures (of what was applied after the warm-up, and of the warm-up apart)."""
    before = monitor.stats()
    streams = _streams(endpoints, lanes, seed=seed, size=size, rate=rate, seconds=warm_up + seconds)
    for stream in streams:
        stream.start()
    started = time.monotonic()
    warmed = before if warm_up <= 0 else None
    highest = dict.fromkeys(_DIRECTIONS, 0)

    def changes_made(now: float, stats: list[RouteStats]) -> bool:
        nonlocal warmed
        if warmed is None and now - started >= warm_up:
            warmed = stats
        for direction, value in _backlog(stats).items():
            highest[direction] = max(highest[direction], value)
        return not any(stream.running() for stream in streams)

    at_end = _backlog(monitor.wait(f"{rate:g} changes/s", changes_made, warm_up + seconds + 120))
    summaries: list[StreamSummary] = [stream.join(timeout=30) for stream in streams]
    stopped = time.monotonic()
    drained = monitor.wait("draining", DrainWatch(quiet=2.0, long_quiet=10.0).observe, _DRAIN_TIMEOUT_SECONDS)
    drain_seconds = time.monotonic() - stopped
    made = sum(summary.total for summary in summaries)
    if warmed is None:  # the changes ended before the warm-up did: all of it was warm-up
        warmed = drained
    applied = latency_by_direction(drained, since=warmed)
    elapsed = max((summary.elapsed for summary in summaries), default=0.0)
    achieved = made / elapsed if elapsed else None
    failed: dict[str, int] = {}
    for summary in summaries:
        for name, count in summary.failed.items():
            failed[name] = failed.get(name, 0) + count
    return {
        "rate": rate,
        "seconds": seconds,
        "warm_up_seconds": warm_up,
        "streams": len(streams),
        "changes_made": made,
        "achieved_rate": round(achieved, 1) if achieved is not None else None,
        "failed_changes": failed,
        "change_to_applied": applied,
        # The mark: p99 change → applied within a second, both ways, at the rate asked for.
        "p99_within_1s": {
            direction: figures.get("p99_seconds") is not None and figures["p99_seconds"] <= _P99_TARGET
            for direction, figures in applied.items()
        },
        "rate_reached": achieved is not None and achieved >= rate * _RATE_REACHED,
        # The producers' part of it: from the change at the source to its message sent.
        "change_to_published": latency_by_direction(drained, since=warmed, leg="published"),
        # What was applied during the warm-up, kept out of the figures above.
        "warm_up": {
            "change_to_applied": latency_by_direction(warmed, since=before),
            "change_to_published": latency_by_direction(warmed, since=before, leg="published"),
        },
        "backlog": {
            "highest": highest,
            "when_changes_stopped": at_end,
            "left_after_drain": _backlog(drained),
            "drain_seconds": round(drain_seconds, 1),
        },
    }


def run(
    rates: Sequence[float],
    seconds: float,
    *,
    warm_up: float,
    run_dir: Path,
    seed: int,
    concurrency: int | None,
) -> dict[str, Any]:
    """Start the pipeline, sync, run every phase; every process is stopped on the way out."""
    progress = Console(stderr=True)  # stdout carries the JSON only
    size = DataSize()
    machine = machine_figures()
    launcher = Launcher.create(run_dir)
    with signals_interrupt():
        try:
            endpoints, routes = start_pipeline(
                launcher, progress, seed=seed, size=size, concurrency=concurrency
            )
            view = HeadlessView(progress)
            monitor = Monitor(run_dir / "metrics", routes, view, partial(check_health, launcher))
            run_initial_sync(launcher, endpoints, monitor, view)
            phases = []
            # Users taken in turn across the phases: a user's requests count against its limit for 5 minutes.
            lanes = _Lanes(
                total=sum(_stream_count(rate) for rate in rates),
                users=itertools.cycle(endpoints.workload_clients),
            )
            for rate in rates:
                view.message(f"{rate:g} changes/s for {warm_up:g} s of warm-up and {seconds:g} s, both sides")
                phases.append(
                    _phase(
                        monitor,
                        endpoints,
                        lanes,
                        seed=seed,
                        size=size,
                        rate=rate,
                        seconds=seconds,
                        warm_up=warm_up,
                    )
                )
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
            launcher.group.stop_all()
    return {
        # How fast this machine ran Python before the pipeline started (bench/_machine.py).
        "machine": machine,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "consumer_concurrency": concurrency or PER_BUCKET,
        "sandbox_limits": "on (the twins' defaults)",
        "logs": str(run_dir / "logs"),
        "phases": phases,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, run, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200,500", help="Changes per second, one phase each.")
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="Length of each phase's measured part, after its warm-up."
    )
    parser.add_argument(
        "--warm-up",
        type=float,
        default=_WARM_UP_SECONDS,
        help="Seconds of changes at each phase's rate before its measured part (figured apart).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="50 and 200 changes/s for 15 s each (after the warm-up)."
    )
    parser.add_argument("--seed", type=int, default=1, help="Seed of the twins' data and the changes.")
    parser.add_argument(
        "--concurrency", type=int, help="Sessions each consumer works at once (default: one per bucket)."
    )
    parser.add_argument("--run-dir", type=Path, help="Keep logs and metrics here (default: a temporary one).")
    args = parser.parse_args(argv)
    try:
        rates = [float(part) for part in args.rates.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--rates takes numbers separated by commas, not {args.rates!r}")
    seconds, warm_up = args.seconds, args.warm_up
    if seconds <= 0 or warm_up < 0:
        parser.error("--seconds takes a number above 0, --warm-up one of 0 or more")
    if args.quick:
        rates, seconds = list(_QUICK_RATES), _QUICK_SECONDS
    measure = partial(run, rates, seconds, warm_up=warm_up, seed=args.seed, concurrency=args.concurrency)
    if args.run_dir is not None:
        figures = measure(run_dir=args.run_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="dualbus-live-") as scratch:
            figures = measure(run_dir=Path(scratch))
    sys.stdout.write(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
