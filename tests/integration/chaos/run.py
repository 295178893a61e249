"""The whole pipeline as processes, live changes on both sides, and SIGKILL of its parts while they run.

Started as ``dualbus demo`` starts it (``dualbus.demo.launch``): the emulator (keeping its messages on disk),
both twins, one consumer per area and direction, both producers (F&O's on data events), the initial sync.
Then the workload changes records on both sides while, every ``kill_every`` seconds, a consumer of a changed
area, a producer or the emulator (in turn) is killed with SIGKILL and started again after a short pause.
After the stream ends, the run waits until both twins' write logs are still and reconcile finds no drift
(or ``settle_timeout`` passes), then judges the write logs (``tests.integration.chaos.writes``).
"""

from __future__ import annotations

import io
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from rich.console import Console

from dualbus.demo.drain import DrainWatch
from dualbus.demo.environment import PIPELINE_CLIENT, WORKLOAD_CLIENT, Endpoints
from dualbus.demo.errors import DemoError
from dualbus.demo.finish import Findings, find
from dualbus.demo.launch import Launcher, consumer_name, initial_sync_layers
from dualbus.demo.monitor import HeadlessView, Monitor
from dualbus.demo.processes import ChildProcess
from dualbus.demo.workload import DataSize, StreamThread, api_client
from dualbus.sandbox.identity import user_id_for
from dualbus.sandbox.workload import StreamConfig
from tests.integration.chaos.writes import Judgement, Writers, judge, read_writes

__all__ = ["ChaosOptions", "ChaosResult", "run_chaos"]

# The areas the workload changes (customers, persons, vendors and their contacts); their consumers are killed.
CHANGED_AREAS = ("customer", "vendor")
_SYNC_TIMEOUT = 120.0
_POLL = 0.25


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosOptions:
    """How long, how fast, how often to kill, and how long to wait for the pipeline to settle."""

    run_dir: Path
    duration: float = 40.0
    rate: float = 10.0
    kill_every: float = 6.0
    max_down: float = 2.0
    seed: int = 7
    size: DataSize = field(default_factory=lambda: DataSize(customers=40, vendors=10, products=5))
    concurrency: int = 2
    settle_timeout: float = 120.0
    quiet: float = 6.0
    # Consumers of areas the workload does not change are stopped after the initial sync (less load).
    only_changed_areas: bool = True


@dataclass(slots=True)
class ChaosResult:
    """The figures of one run."""

    changes: int = 0
    concurrent: int = 0
    # Changes a twin refused the workload (a record the other side's delete had just removed, say).
    failed_changes: dict[str, int] = field(default_factory=dict)
    kills: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    drift: int = -1
    dead_lettered: int = -1
    settle_seconds: float = 0.0
    duration: float = 0.0
    writes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "changes": self.changes,
            "concurrent_edits": self.concurrent,
            "failed_changes": self.failed_changes,
            "kills": dict(self.kills),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "drift": self.drift,
            "dead_lettered": self.dead_lettered,
            "settle_seconds": round(self.settle_seconds, 1),
            "duration_seconds": round(self.duration, 1),
            "writes": self.writes,
            "examples": self.examples,
        }


def run_chaos(options: ChaosOptions, console: Console | None = None) -> ChaosResult:
    """Run once; every process started is stopped on the way out."""
    console = console or Console(file=io.StringIO())
    launcher = Launcher.create(options.run_dir)
    started = time.monotonic()
    try:
        return _Chaos(options, launcher, console).run(started)
    finally:
        launcher.group.stop_all(grace=5.0)


class _Chaos:
    def __init__(self, options: ChaosOptions, launcher: Launcher, console: Console) -> None:
        self.options = options
        self.launcher = launcher
        self.console = console
        self.rng = random.Random(options.seed)
        self.result = ChaosResult()
        self.bus_port = 0
        self.since = 0

    # -- set-up, as the demo does it -------------------------------------------------------------------

    def run(self, started: float) -> ChaosResult:
        endpoints = self._start(started)
        with _clients(endpoints) as (fo, dataverse):
            self.since = max(_last_sequence(fo, 0), _last_sequence(dataverse, 0))
        self._changes_under_fire(endpoints)
        settle_started = time.monotonic()
        findings = self._settle(endpoints)
        self.result.settle_seconds = time.monotonic() - settle_started
        self.result.drift = int(findings.report["drift"])
        self.result.dead_lettered = findings.dead_lettered
        if findings.report["records"]:
            self.result.examples["drift"] = list(findings.report["records"])[:5]
        self._judge(endpoints)
        self.result.duration = time.monotonic() - started
        return self.result

    def _start(self, started: float) -> Endpoints:
        options, launcher = self.options, self.launcher
        twins = launcher.start_twins(seed=options.seed, size=options.size)
        connection_string = launcher.start_emulator(data_dir=options.run_dir / "state" / "emulator")
        self.bus_port = int(urlsplit(connection_string.split(";")[0].removeprefix("Endpoint=")).port or 0)
        endpoints = Endpoints.from_info(connection_string, launcher.twins_info(twins))
        routes = launcher.start_consumers(endpoints, options.concurrency)
        port = launcher.start_producers(endpoints)
        launcher.bind_data_events(endpoints, port)
        monitor = Monitor(options.run_dir / "metrics", routes, HeadlessView(self.console), self._health)
        for index, areas in enumerate(initial_sync_layers(), start=1):
            child = launcher.start_initial_sync(endpoints, areas, index)
            monitor.wait("initial sync", child.exited_since, _SYNC_TIMEOUT)
            if child.wait(timeout=5) != 0:
                raise DemoError(f"the initial sync failed; see {child.log_path}")
            monitor.wait("initial sync", DrainWatch(quiet=2.0, long_quiet=8.0).observe, _SYNC_TIMEOUT)
        if options.only_changed_areas:
            self._stop_unchanged_consumers()
        self.console.print(f"set up in {time.monotonic() - started:.1f} s")
        return endpoints

    def _stop_unchanged_consumers(self) -> None:
        for child in list(self.launcher.group.children):
            if child.name.startswith("consumer-") and not any(
                child.name.startswith(f"consumer-{area}-") for area in CHANGED_AREAS
            ):
                child.signal_group(signal.SIGTERM)
                child.wait(30.0)

    def _health(self) -> None:
        for child in self.launcher.group.exited():
            if child.name in {"emulator", "sandbox"} or child.name.startswith("producer-"):
                raise DemoError(
                    f"{child.name} exited with code {child.process.returncode}; see {child.log_path}"
                )

    # -- the live changes, and the kills -----------------------------------------------------------------

    def _changes_under_fire(self, endpoints: Endpoints) -> None:
        options = self.options
        config = StreamConfig(
            seed=options.seed,
            rate=options.rate,
            duration=options.duration,
            max_changes=int(options.rate * options.duration) + 1,
            # Every change must reach the other side: no planted refusals.
            reject_share=0.0,
            concurrent_share=0.05,
        )
        stream = StreamThread(endpoints, seed=options.seed, size=options.size, config=config)
        stream.start()
        # The producer last: its kill counts at once, but its restart waits for "producer started".
        victims = ("consumer", "emulator", "producer")
        turn = 0
        next_kill = time.monotonic() + options.kill_every
        while stream.running():
            if time.monotonic() >= next_kill:
                self._kill(victims[turn % len(victims)])
                turn += 1
                next_kill = time.monotonic() + options.kill_every
            time.sleep(_POLL)
        summary = stream.join(timeout=10)
        self.result.changes = summary.total
        self.result.concurrent = summary.concurrent
        self.result.failed_changes = dict(summary.failed)

    def _kill(self, kind: str) -> None:
        children = {child.name: child for child in self.launcher.group.children if child.running()}
        if kind == "consumer":
            names = [
                consumer_name(area, direction)
                for area in CHANGED_AREAS
                for direction in ("to-fo", "to-dataverse")
            ]
        elif kind == "producer":
            names = ["producer-fo", "producer-dataverse"]
        else:
            names = ["emulator"]
        candidates = [children[name] for name in names if name in children]
        if not candidates:
            return
        child = self.rng.choice(candidates)
        child.signal_group(signal.SIGKILL)
        child.wait(30.0)
        self.result.kills[kind] += 1
        time.sleep(self.rng.uniform(0.0, self.options.max_down))
        self._restart(child)

    def _restart(self, child: ChildProcess) -> None:
        if child.name == "emulator":
            self.launcher.restart_emulator(child, self.bus_port)
            return
        restarted = self.launcher.group.restart(child)
        if child.name.startswith("producer-"):
            restarted.wait_for("producer started", 60.0)

    # -- the end -------------------------------------------------------------------------------------------

    def _settle(self, endpoints: Endpoints) -> Findings:
        """Wait for the twins' logs to be still, then reconcile; again until no drift or the deadline."""
        deadline = time.monotonic() + self.options.settle_timeout
        findings: Findings | None = None
        while True:
            self._wait_still(endpoints, deadline)
            findings = find(endpoints)
            if int(findings.report["drift"]) == 0 or time.monotonic() >= deadline:
                return findings

    def _wait_still(self, endpoints: Endpoints, deadline: float) -> None:
        last = (0, 0)
        still_since = time.monotonic()
        with _clients(endpoints) as (fo, dataverse):
            while time.monotonic() < deadline:
                now = (_last_sequence(fo, last[0]), _last_sequence(dataverse, last[1]))
                if now != last:
                    last, still_since = now, time.monotonic()
                elif time.monotonic() - still_since >= self.options.quiet:
                    return
                time.sleep(0.5)

    def _judge(self, endpoints: Endpoints) -> None:
        with _clients(endpoints) as (fo, dataverse):
            fo_writes, dv_writes = read_writes(fo), read_writes(dataverse)
            companies = {
                str(row["cdm_companyid"]): str(row["cdm_companycode"])
                for row in dataverse.get(
                    "/api/data/v9.2/cdm_companies", params={"$select": "cdm_companyid,cdm_companycode"}
                ).json()["value"]
            }
        # Kept beside the logs, to look into a finding (or judge again) after the processes are gone.
        for name, entries in (("fo", fo_writes), ("dataverse", dv_writes)):
            (self.options.run_dir / f"writes-{name}.json").write_bytes(orjson.dumps(entries))
        (self.options.run_dir / "writes-since.txt").write_text(str(self.since))
        writers = Writers(
            dualbus_fo=PIPELINE_CLIENT,
            dualbus_dataverse=user_id_for(PIPELINE_CLIENT),
            user_fo=WORKLOAD_CLIENT,
            user_dataverse=user_id_for(WORKLOAD_CLIENT),
            since=self.since,
        )
        verdict: Judgement = judge(fo_writes, dv_writes, writers, companies)
        self.result.lost, self.result.duplicated = verdict.lost, verdict.duplicated
        self.result.writes = {"fo": verdict.fo_writes, "dataverse": verdict.dataverse_writes}
        self.result.examples |= dict(verdict.examples)


class _clients:  # noqa: N801 - used as a context manager, like a function
    """Clients for both twins' own endpoints, as the workload application."""

    def __init__(self, endpoints: Endpoints) -> None:
        secret = endpoints.clients[WORKLOAD_CLIENT]
        fo_base = endpoints.fo["url"]
        dv_base = endpoints.dataverse["url"]
        self.fo = api_client(endpoints.fo, fo_base, WORKLOAD_CLIENT, secret)
        self.dataverse = api_client(endpoints.dataverse, dv_base, WORKLOAD_CLIENT, secret)

    def __enter__(self) -> tuple[Any, Any]:
        return self.fo, self.dataverse

    def __exit__(self, *exc_info: object) -> None:
        self.fo.close()
        self.dataverse.close()


def _last_sequence(client: Any, after: int) -> int:
    """The sequence of the newest entry of a twin's write log (``after`` when none is newer)."""
    entries = read_writes(client, after)
    return int(entries[-1]["sequence"]) if entries else after
