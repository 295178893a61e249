"""Watching the running pipeline: figures from every process's metrics file, shown live or as plain lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from rich.console import Console
from rich.live import Live

from dualbus.demo.display import headless_lines, live_view
from dualbus.demo.stats import RouteStats, aggregate
from dualbus.shared.metrics_file import read_snapshot

__all__ = ["HeadlessView", "LiveView", "Monitor", "View", "read_stats"]

_TICK_SECONDS = 0.5
_HEADLESS_EVERY_SECONDS = 5.0
# Metrics files of processes that publish, by name prefix, and the origin they publish from.
_PUBLISHERS = (("producer-fo", "fo"), ("initial-sync-fo", "fo"), ("producer-dataverse", "dataverse"))


def read_stats(metrics_dir: Path, routes: Sequence[tuple[str, str]]) -> list[RouteStats]:
    """Aggregate the latest snapshot of every process in ``metrics_dir``."""
    producers: dict[str, list[dict[str, Any]]] = {}
    consumers: list[dict[str, Any]] = []
    for path in sorted(metrics_dir.glob("*.json")):
        snapshot = read_snapshot(path)
        if path.stem.startswith("consumer-"):
            consumers.append(snapshot)
            continue
        for prefix, origin in _PUBLISHERS:
            if path.stem.startswith(prefix):
                producers.setdefault(origin, []).append(snapshot)
    return aggregate(routes, producers, consumers)


class View(Protocol):
    """Where progress goes."""

    def show(self, phase: str, elapsed: float, stats: Sequence[RouteStats]) -> None:
        """Show the latest figures."""

    def message(self, text: str) -> None:
        """Show one line of narration."""


class LiveView:
    """A rich table redrawn in place, with narration printed above it."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live = Live(console=console, refresh_per_second=2, transient=False)

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    def show(self, phase: str, elapsed: float, stats: Sequence[RouteStats]) -> None:
        """Redraw the table."""
        self._live.update(live_view(phase, elapsed, stats))

    def message(self, text: str) -> None:
        """Print above the table."""
        self._live.console.print(text, highlight=False)


class HeadlessView:
    """Plain lines every few seconds, for CI and logs."""

    def __init__(self, console: Console, every: float = _HEADLESS_EVERY_SECONDS) -> None:
        self._console = console
        self._every = every
        self._last = -every

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def show(self, phase: str, elapsed: float, stats: Sequence[RouteStats]) -> None:
        """Print the figures, at most every few seconds."""
        if elapsed - self._last < self._every:
            return
        self._last = elapsed
        for line in headless_lines(phase, elapsed, stats):
            self._console.print(line, highlight=False, markup=False, soft_wrap=True)

    def message(self, text: str) -> None:
        """Print one line."""
        self._console.print(text, highlight=False)


class Monitor:
    """Polls the metrics files and keeps the view current while the demo waits for something."""

    def __init__(
        self, metrics_dir: Path, routes: Sequence[tuple[str, str]], view: View, health: Callable[[], None]
    ) -> None:
        self.metrics_dir = metrics_dir
        self.routes = list(routes)
        self.view = view
        self._health = health
        self._started = time.monotonic()

    def stats(self) -> list[RouteStats]:
        """The figures now."""
        return read_stats(self.metrics_dir, self.routes)

    def wait(
        self, phase: str, done: Callable[[float, list[RouteStats]], bool], timeout: float
    ) -> list[RouteStats]:
        """Refresh the view until ``done(now, stats)`` or ``timeout`` s pass; returns the last figures.

        ``health`` is called on every tick and raises when a process the demo needs has died.
        """
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            stats = self.stats()
            self.view.show(phase, now - self._started, stats)
            if done(now, stats) or now >= deadline:
                return stats
            self._health()
            time.sleep(_TICK_SECONDS)
