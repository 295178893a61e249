"""One demo run from start to verdict: processes up, initial sync, live changes, drain, reconcile, report.

Every process the demo starts is stopped on the way out, whatever ends the run: the verdict, an error,
Ctrl-C or SIGTERM (turned into the same interrupt, so one ``finally`` does the stopping).
"""

from __future__ import annotations

import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
from rich.console import Console
from rich.text import Text

from dualbus.demo.display import latency_lines
from dualbus.demo.drain import DrainWatch
from dualbus.demo.environment import Endpoints
from dualbus.demo.errors import DemoError
from dualbus.demo.finish import Findings, find, print_findings
from dualbus.demo.launch import TOPOLOGY_APPLY, Launcher, initial_sync_layers
from dualbus.demo.monitor import HeadlessView, LiveView, Monitor, View
from dualbus.demo.stats import RouteStats, latency_by_direction
from dualbus.demo.workload import DataSize, StreamThread
from dualbus.sandbox.workload import StreamConfig, StreamSummary
from dualbus.shared.errors import DualbusError

__all__ = [
    "DemoOptions",
    "check_health",
    "run_demo",
    "run_initial_sync",
    "signals_interrupt",
    "start_pipeline",
]

_INTERRUPTED = 130
_SYNC_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    """How long, how fast and how much: the defaults finish in under three minutes on two cores."""

    run_dir: Path
    duration: float = 60.0
    rate: float = 10.0
    seed: int = 1
    size: DataSize = field(default_factory=DataSize)
    keep_running: bool = False
    headless: bool = False
    concurrency: int | None = None  # sessions per consumer; None: the consumer's default
    drain_timeout: float = 60.0
    reject_share: float = 0.05
    concurrent_share: float = 0.05

    def stream_config(self) -> StreamConfig:
        """The live change stream these options ask for."""
        return StreamConfig(
            seed=self.seed,
            rate=self.rate,
            duration=self.duration,
            max_changes=int(self.rate * self.duration) + 1,
            reject_share=self.reject_share,
            concurrent_share=self.concurrent_share,
        )


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT both raise KeyboardInterrupt, so either stops a run (the demo's, a benchmark's)
    the same way.

    SIGINT is set explicitly too: a shell starts background jobs with it ignored, and Python keeps that.
    """

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_demo(options: DemoOptions, console: Console) -> int:
    """Run the demo; returns the exit code (0: in step, apart from rightly dead-lettered changes)."""
    options.run_dir.mkdir(parents=True, exist_ok=True)
    launcher = Launcher.create(options.run_dir)
    demo = _Demo(options, launcher, console)
    with signals_interrupt():
        try:
            return demo.run()
        except KeyboardInterrupt:
            console.print("Interrupted: stopping every process.")
            demo.write_summary({"exit_code": _INTERRUPTED, "error": "interrupted"})
            return _INTERRUPTED
        except DualbusError as exc:
            console.print(Text.assemble(("error:", "red"), f" {exc}"))
            demo.write_summary({"exit_code": 1, "error": str(exc)})
            return 1
        finally:
            # A second Ctrl-C must not cut the stopping short: that is how processes get orphaned.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)
            codes = launcher.group.stop_all()
            killed = sorted(name for name, code in codes.items() if code == -signal.SIGKILL)
            console.print(f"Stopped {len(codes)} processes; logs in {launcher.group.log_dir}")
            if killed:
                console.print(f"Killed after the grace period: {', '.join(killed)}")


def start_pipeline(
    launcher: Launcher, console: Console, *, seed: int, size: DataSize, concurrency: int | None
) -> tuple[Endpoints, list[tuple[str, str]]]:
    """Emulator, twins, one consumer per route, both producers and F&O data events; returns the routes."""
    started = time.monotonic()
    console.print("Starting the Service Bus emulator and the F&O and Dataverse twins...")
    twins = launcher.start_twins(seed=seed, size=size)
    connection_string = launcher.start_emulator()
    endpoints = Endpoints.from_info(connection_string, launcher.twins_info(twins))
    console.print(f"Emulator and twins up ({time.monotonic() - started:.1f} s).")
    routes = launcher.start_consumers(endpoints, concurrency)
    console.print(f"Started {len(routes)} consumers, one per area and direction.")
    port = launcher.start_producers(endpoints)
    entities = launcher.bind_data_events(endpoints, port)
    console.print(f"Producers up; F&O data events of {len(entities)} entities go to port {port}.")
    return endpoints, routes


def check_health(launcher: Launcher) -> None:
    """DemoError when a process the pipeline needs has exited (an initial sync's or topology apply's end is
    expected)."""
    for child in launcher.group.exited():
        if not child.name.startswith("initial-sync") and child.name != TOPOLOGY_APPLY:
            raise DemoError(f"{child.name} exited with code {child.process.returncode}; see {child.log_path}")


def run_initial_sync(launcher: Launcher, endpoints: Endpoints, monitor: Monitor, view: View) -> None:
    """The initial sync from F&O, layer by layer, each applied before the next one starts."""
    for index, areas in enumerate(initial_sync_layers(), start=1):
        view.message(f"Initial sync from F&O, step {index}: {', '.join(areas)}")
        child = launcher.start_initial_sync(endpoints, areas, index)
        monitor.wait("initial sync", child.exited_since, _SYNC_TIMEOUT_SECONDS)
        if child.wait(timeout=5) != 0:
            raise DemoError(f"the initial sync failed; see {child.log_path}")
        # The next layer looks these areas up: they must have arrived first.
        monitor.wait("initial sync", DrainWatch(quiet=2.0, long_quiet=8.0).observe, _SYNC_TIMEOUT_SECONDS)


class _Demo:
    def __init__(self, options: DemoOptions, launcher: Launcher, console: Console) -> None:
        self.options = options
        self.launcher = launcher
        self.console = console
        self.started = time.monotonic()
        self.summary: dict[str, Any] = {"options": _options_dict(options)}

    def run(self) -> int:
        endpoints, routes = start_pipeline(
            self.launcher,
            self.console,
            seed=self.options.seed,
            size=self.options.size,
            concurrency=self.options.concurrency,
        )
        view: LiveView | HeadlessView = (HeadlessView if self.options.headless else LiveView)(self.console)
        with view:
            health = partial(check_health, self.launcher)
            monitor = Monitor(self.launcher.run_dir / "metrics", routes, view, health)
            run_initial_sync(self.launcher, endpoints, monitor, view)
            stream = self._live_changes(endpoints, monitor, view)
            drained, stats = self._drain(monitor, view)
        return self._finish(endpoints, stream, drained, stats)

    def _live_changes(self, endpoints: Endpoints, monitor: Monitor, view: View) -> StreamSummary:
        config = self.options.stream_config()
        view.message(f"Live changes on both sides: {config.rate:g}/s for {config.duration:g} s")
        stream = StreamThread(endpoints, seed=self.options.seed, size=self.options.size, config=config)
        stream.start()
        monitor.wait("live changes", lambda _now, _stats: not stream.running(), config.duration + 60)
        return stream.join(timeout=10)

    def _drain(self, monitor: Monitor, view: View) -> tuple[bool, list[RouteStats]]:
        view.message("Changes made; waiting for the pipeline to drain...")
        watch = DrainWatch(quiet=4.0, long_quiet=12.0)
        drained = False

        def done(now: float, stats: list[RouteStats]) -> bool:
            nonlocal drained
            drained = watch.observe(now, stats)
            return drained

        stats = monitor.wait("draining", done, self.options.drain_timeout)
        return drained, stats

    def _finish(
        self, endpoints: Endpoints, stream: StreamSummary, drained: bool, stats: list[RouteStats]
    ) -> int:
        for line in latency_lines(stats):
            self.console.print(line, highlight=False)
        self.console.print("Reconciling F&O and Dataverse and reading the dead-letter queues...")
        findings = find(endpoints)
        print_findings(self.console, findings)
        code = 0 if findings.verdict.ok else 1
        self._write_summary(code, stream, drained, stats, findings)
        if self.options.keep_running:
            try:
                self._serve(endpoints)
            except KeyboardInterrupt:
                self.console.print("Stopping.")
        return code

    def _write_summary(
        self, code: int, stream: StreamSummary, drained: bool, stats: list[RouteStats], findings: Findings
    ) -> None:
        path = self.write_summary(
            {
                "exit_code": code,
                "drained": drained,
                # Published but never settled; above zero when the bus dropped a re-published duplicate.
                "unsettled": sum(row.lag for row in stats),
                "stream": stream.as_dict(),
                "expected_rejects": sum(stream.rejects.values()),
                "routes": [row.as_dict() for row in stats],
                # The figures bench/live.py prints: live changes only, per direction.
                "change_to_applied": latency_by_direction(stats),
                **findings.as_dict(),
            }
        )
        self.console.print(f"Summary written to {path} ({self.summary['elapsed_seconds']} s in all).")

    def write_summary(self, outcome: dict[str, Any]) -> Path:
        """Write ``summary.json``: the options, how long it took, and ``outcome``."""
        self.summary |= {"elapsed_seconds": round(time.monotonic() - self.started, 1), **outcome}
        path = self.launcher.run_dir / "summary.json"
        path.write_bytes(orjson.dumps(self.summary, option=orjson.OPT_INDENT_2))
        return path

    def _serve(self, endpoints: Endpoints) -> None:
        self.console.print("Everything keeps running until Ctrl-C. To try it by hand:", style="bold")
        variables = {"DUALBUS_SERVICEBUS__CONNECTION_STRING": endpoints.connection_string}
        variables |= endpoints.api_variables()
        lines = [f"export {name}={shlex.quote(value)}" for name, value in variables.items()]
        lines += [
            f"Dataverse Web API: {endpoints.dataverse['api_url']}",
            f"F&O OData:         {endpoints.fo['url']}/data",
            "Then try: dualbus dlq list; dualbus pause customer --to fo; dualbus resume customer --to fo",
            f"Figures: dualbus status --metrics {shlex.quote(str(self.launcher.run_dir / 'metrics'))}",
        ]
        for line in lines:
            self.console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        while True:
            time.sleep(1)


# How the figures name the consumers' default concurrency (RuntimeOptions.concurrency).
PER_BUCKET = "one session per ordering bucket"


def _options_dict(options: DemoOptions) -> dict[str, Any]:
    return {
        "duration": options.duration,
        "rate": options.rate,
        "seed": options.seed,
        "customers": options.size.customers,
        "vendors": options.size.vendors,
        "products": options.size.products,
        "concurrency": options.concurrency or PER_BUCKET,
    }
