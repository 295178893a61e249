"""A running pipeline for the console's browser test: emulator, both twins, consumers writing metrics files.

The consumers run on a thread of their own (one event loop), each with a metrics file as a deployed
consumer writes one (``OTEL_METRICS_EXPORTER=jsonfile``), so the console reads the same figures it would
beside a real deployment.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from dualbus.consumers import ConsumerMetrics, RuntimeOptions, run_consumer
from dualbus.consumers._retry import MessageRetry
from dualbus.shared.metrics_file import JsonFileMetricExporter
from dualbus.shared.settings import Settings
from dualbus.shared.topology import Direction, default_topology

# A missing lookup is dead-lettered at once, as the page under test expects, not after the default wait
# for a parent still on its way.
_RETRY = MessageRetry(lookup_wait_seconds=0.0)
_OPTIONS = RuntimeOptions(concurrency=4, session_wait=0.5, idle_wait=0.3, shutdown_deadline=5.0)
_EXPORT_MILLISECONDS = 300


class PauseSeen(logging.Handler):
    """Tells when a consumer took a pause or resume command (it logs each one it applies)."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = threading.Event()
        self.resumed = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if " paused by " in text:
            self.paused.set()
        elif " resumed by " in text:
            self.resumed.set()


@contextmanager
def running_consumers(
    settings: Settings, routes: Sequence[tuple[str, Direction]], metrics_dir: Path
) -> Iterator[PauseSeen]:
    """Consumers of ``routes`` until the block ends; yields what tells when they took a pause."""
    seen = PauseSeen()
    control_log = logging.getLogger("dualbus.shared.control")
    control_log.addHandler(seen)
    previous_level = control_log.level
    control_log.setLevel(logging.INFO)
    providers = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        tasks = []
        for area, direction in routes:
            exporter = JsonFileMetricExporter(metrics_dir / f"consumer-{area}-{direction.value}.json")
            reader = PeriodicExportingMetricReader(exporter, export_interval_millis=_EXPORT_MILLISECONDS)
            provider = MeterProvider(metric_readers=[reader])
            providers.append(provider)
            metrics = ConsumerMetrics(area=area, direction=direction.value, meter_provider=provider)
            tasks.append(
                asyncio.create_task(
                    run_consumer(
                        settings,
                        area,
                        direction,
                        stop=stop,
                        topology=default_topology(),
                        options=_OPTIONS,
                        metrics=metrics,
                        retry=_RETRY,
                    )
                )
            )
        await asyncio.gather(*tasks)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        if thread.is_alive():
            raise AssertionError("the consumers did not stop within 60 s of being told to")
        loop.close()
        for provider in providers:
            provider.shutdown()
        control_log.removeHandler(seen)
        control_log.setLevel(previous_level)
