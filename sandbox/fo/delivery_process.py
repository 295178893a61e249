"""F&O data events delivered from a process of their own, as F&O delivers them apart from its OData service.

F&O's business events are sent by dedicated batch threads ("Processing threads", business events
parameters), on its batch servers, not by the servers that answer OData. Delivered from threads of the
twin's own process, the events waited for its interpreter lock behind the twin's HTTP servers: at 200
changes/s on two cores one delivery took 25 ms at p50, F&O's four threads fell behind the events coming, and
the queue grew to seconds. From a process of their own (one run of ``bench/live.py --rates 200``), the F&O
producer's leg went from 3.8 s to 0.61 s at p50.

The twin builds each event and hands it over with its endpoints, pickled as their configuration (each
endpoint's copy in the child opens its own connections, once per endpoint name); the child's threads send
them with F&O's retries (``events.deliver``) and report every attempt, delivery and give-up back, which the
twin counts in its ``DeliveryStats`` as before. The child ignores Ctrl+C: the twin decides when it stops.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import Any

from dualbus.sandbox.fo.events import Delivery, EventEndpoint, deliver

__all__ = ["DeliveryProcess"]

_log = logging.getLogger(__name__)
_DONE = "done"


class DeliveryProcess:
    """A child process delivering the events put to it from ``threads`` threads; counts come back."""

    def __init__(
        self,
        *,
        threads: int,
        retries: int,
        retry_wait: float,
        queue_size: int,
        count: Callable[[str, str], None],
    ) -> None:
        """``count(kind, endpoint name)`` hears of each attempt, delivery and give-up, as they happen."""
        context = multiprocessing.get_context("spawn")
        self._events: Queue[Any] = context.Queue(maxsize=queue_size)
        self._results: Queue[Any] = context.Queue()
        self._threads = threads
        self._count = count
        self._outstanding = 0
        self._lock = threading.Lock()
        self._process = context.Process(
            target=_serve,
            args=(self._events, self._results, threads, retries, retry_wait),
            daemon=True,
            name="fo-data-events",
        )
        self._process.start()
        self._reader = threading.Thread(target=self._read_results, daemon=True, name="fo-data-event-counts")
        self._reader.start()

    def put(self, delivery: Delivery, endpoints: list[EventEndpoint], *, timeout: float) -> None:
        """Queue one event for its endpoints; queue.Full when the queue stayed full for ``timeout``."""
        with self._lock:
            self._outstanding += 1
        try:
            self._events.put((delivery, endpoints), timeout=timeout)
        except queue.Full:
            with self._lock:
                self._outstanding -= 1
            raise

    def flush(self, timeout: float) -> bool:
        """Wait until every event put has been delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._outstanding:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float) -> None:
        """Let the child deliver what is queued and stop, within ``timeout``; kill it past that."""
        deadline = time.monotonic() + timeout
        try:
            for _ in range(self._threads):
                self._events.put(None, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            _log.warning("data event queue still full at shutdown; pending events are dropped")
        self._process.join(max(0.0, deadline - time.monotonic()))
        if self._process.is_alive():
            _log.warning("the data event delivery process did not stop in time; killing it")
            self._process.kill()
            self._process.join()
        self._results.put(None)  # ends the reader, after every count the child sent
        self._reader.join(max(1.0, deadline - time.monotonic()))

    def _read_results(self) -> None:
        while True:
            item = self._results.get()
            if item is None:
                return
            kind, name = item
            if kind == _DONE:
                with self._lock:
                    self._outstanding -= 1
            else:
                self._count(kind, name)


def _serve(events: Queue[Any], results: Queue[Any], threads: int, retries: int, retry_wait: float) -> None:
    """The child: deliver from ``threads`` threads until each has taken its stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopping = threading.Event()
    endpoints: dict[str, EventEndpoint] = {}
    registering = threading.Lock()

    def count(kind: str, name: str) -> None:
        results.put((kind, name))

    def work() -> None:
        while True:
            item = events.get()
            if item is None:
                stopping.set()  # a failed event's retries stop waiting, as in the twin's own threads
                return
            delivery, targets = item
            for target in targets:
                with registering:
                    endpoint = endpoints.setdefault(target.name, target)
                deliver(
                    endpoint, delivery, retries=retries, retry_wait=retry_wait, stopping=stopping, count=count
                )
            results.put((_DONE, ""))

    workers = [threading.Thread(target=work, name=f"fo-data-events-{n}") for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for endpoint in endpoints.values():
        with contextlib.suppress(Exception):
            endpoint.close()
