"""Build a consumer from settings and run it until SIGTERM/SIGINT: the deployable's composition."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from dualbus.consumers._batch import BatchingApi
from dualbus.consumers._circuit import Circuit, CircuitPolicy, CircuitSink
from dualbus.consumers._dataverse import API_ROOT, DataverseSink
from dualbus.consumers._fo import ODATA_ROOT as FO_ODATA_ROOT
from dualbus.consumers._fo import FoSink
from dualbus.consumers._limit import AdaptiveLimit
from dualbus.consumers._metrics import ConsumerMetrics
from dualbus.consumers._prepared import check_target, failure_of
from dualbus.consumers._process import MessageProcessor
from dualbus.consumers._retry import MessageRetry
from dualbus.consumers._runtime import Consumer, RuntimeOptions
from dualbus.consumers._sink import Sink
from dualbus.consumers._tombstone_sink import TombstoneSink
from dualbus.shared.api import ApiClient
from dualbus.shared.bus import async_bus_client
from dualbus.shared.control import PauseWatcher, route_name
from dualbus.shared.errors import ConfigError
from dualbus.shared.http import async_http_client
from dualbus.shared.identity import open_tokens
from dualbus.shared.maps import MapSet, Side, load_maps
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy
from dualbus.shared.settings import ApiSettings, Settings
from dualbus.shared.topology import Direction, Topology, default_topology

__all__ = ["open_sink", "run_consumer"]

_log = logging.getLogger("dualbus.consumer")


@asynccontextmanager
async def open_sink(settings: Settings, direction: Direction, *, batch: bool = True) -> AsyncIterator[Sink]:
    """The sink of ``direction``'s target, with its own HTTP client, closed on exit."""
    async with _open_target(settings, direction, batch=batch) as (sink, _api):
        yield sink


@asynccontextmanager
async def _open_target(
    settings: Settings, direction: Direction, *, batch: bool = True
) -> AsyncIterator[tuple[Sink, ApiClient]]:
    """The sink of ``direction``'s target and the unbatched client it writes through."""
    api_settings = _api_settings(settings, direction)
    async with (
        async_http_client(timeout=api_settings.timeout_seconds, max_connections=64) as http,
        open_tokens(api_settings) as tokens,
    ):
        api = ApiClient(api_settings.url, tokens, http)
        sink: Sink
        learning: asyncio.Task[str | None] | None = None
        if direction is Direction.TO_DATAVERSE:
            # $batch cuts the requests per event to a fraction: a win for throughput and service protection.
            paced = api_settings.partial_batches_per_second
            batching = BatchingApi(api, root=API_ROOT, partial_per_second=paced)
            dataverse = DataverseSink(batching if batch else api)
            # The conflict rule needs dualbus's user id; while Dataverse cannot tell it, nothing is applied
            # (every change waits for the one question in flight). Asked while the sessions are opened,
            # which takes as long, instead of before.
            learning = asyncio.create_task(dataverse.start())
            sink = dataverse
        else:
            # F&O's OData service takes $batch as well (data-entities/odata, "Batch requests"), and
            # paces no user's request count the way Dataverse does, so its batches go at once.
            sink = FoSink(BatchingApi(api, root=FO_ODATA_ROOT) if batch else api)
        try:
            yield sink, api
        finally:
            if learning is not None:
                learning.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await learning
            await sink.aclose()


async def run_consumer(
    settings: Settings,
    area: str,
    direction: Direction,
    *,
    concurrency: int | None = None,
    stop: asyncio.Event | None = None,
    topology: Topology | None = None,
    maps: MapSet | None = None,
    retry: MessageRetry | None = None,
    options: RuntimeOptions | None = None,
    metrics: ConsumerMetrics | None = None,
    circuit: CircuitPolicy | None = None,
) -> ConsumerMetrics:
    """Consume ``area`` towards ``direction``'s target until ``stop`` is set (or SIGTERM/SIGINT arrives).

    PrerequisiteError when the target lacks dualbus's fields (``stop`` is then set, before any message is
    received: consumers/_prepared.py).
    """
    if settings.servicebus is None:
        raise ConfigError("DUALBUS_SERVICEBUS__CONNECTION_STRING or __NAMESPACE must be set")
    chosen = topology or default_topology()
    topic = chosen.topic(area)
    subscription = topic.subscription(direction)
    stop = stop or asyncio.Event()
    metrics = metrics or ConsumerMetrics(area=area, direction=direction.value)
    runtime = options or RuntimeOptions(concurrency=concurrency)
    retry = retry or MessageRetry()
    maps = maps or load_maps()
    async with (
        async_bus_client(settings.servicebus) as client,
        _open_target(settings, direction) as (sink, api),
    ):
        processor = MessageProcessor(
            area=area,
            direction=direction,
            maps=maps,
            sink=_guarded(sink, direction, Circuit(circuit), retry),
            limit=AdaptiveLimit(runtime.max_batched_in_flight),
            retry=retry,
            metrics=metrics,
            # The producers' buckets (publisher.py): with another count than the default, every message
            # whose bucket differed was dead-lettered as having the wrong session id.
            buckets=topic.ordering_buckets,
        )
        # Operators pause and resume a route through the control queue (``dualbus pause``).
        watcher = PauseWatcher(client, chosen.control_queue, route_name(area, subscription.name))
        known = asyncio.Event()
        consumer = Consumer(
            client,
            processor,
            topic=topic,
            subscription=subscription,
            options=runtime,
            gate=watcher,
            ready=known,
        )
        # Opening sessions takes a while; it runs alongside the first reading of the pause state and the
        # question whether the target has dualbus's fields, and no message is received before both are in.
        root = API_ROOT if direction is Direction.TO_DATAVERSE else FO_ODATA_ROOT
        prepared = check_target(api, area=area, target=_target(direction), maps=maps, root=root, stop=stop)
        watching = asyncio.create_task(_watch(watcher, known, prepared))
        try:
            with _stop_on_signals(stop):
                await consumer.run(stop)
        finally:
            for task in (watching, prepared):
                task.cancel()
            await asyncio.wait({watching, prepared})
        # The check's failure first (the watch fails with it too): a target without dualbus's fields.
        failures = [failure_of(task) for task in (prepared, watching)]
        if failure := next((failure for failure in failures if failure is not None), None):
            raise failure
    return metrics


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Only the main thread may install handlers; elsewhere (tests, embedding) the caller sets ``stop``.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def _watch(
    watcher: PauseWatcher,
    known: asyncio.Event,
    prepared: asyncio.Task[None],
    *,
    retry: RetryPolicy = RECONNECT_RETRY,
) -> None:
    """Wait for ``prepared``, then read the route's pause state in full, before any message is received;
    then follow the pause state. Read after the check, the state is fresh however long the target took to
    answer.

    A read that fails is tried again after a backoff, and nothing is received meanwhile: a replica started
    while its route is paused (scaled out under the very backlog the pause holds back, or restarted) must
    not apply that backlog because the control queue did not answer its first read.
    """
    await asyncio.shield(prepared)  # shielded: the consumer, not the watch, ends the check
    backoff = Backoff(retry, asyncio.Event())  # never set: the watch ends by being cancelled
    while True:
        try:
            await watcher.poll_once()
            break
        except Exception as exc:  # noqa: BLE001 - logged; the consumer must not wait silently for ever
            _log.warning("cannot read the control queue yet; receiving nothing until it is read: %s", exc)
            await backoff.wait(exc)
    known.set()
    await watcher.run()


def _guarded(sink: Sink, direction: Direction, circuit: Circuit, retry: MessageRetry) -> Sink:
    # One circuit for every worker of this process (they share one target); the tombstones outermost, so
    # that saving them (a Service Bus call) never counts as a failure of the target.
    return TombstoneSink(CircuitSink(sink, circuit, max_wait=retry.budget_seconds), target=_target(direction))


def _target(direction: Direction) -> Side:
    """The side of the maps ``direction`` writes."""
    return direction.target.side


def _api_settings(settings: Settings, direction: Direction) -> ApiSettings:
    chosen = settings.dataverse if direction is Direction.TO_DATAVERSE else settings.fo
    if chosen is None:
        group = "DATAVERSE" if direction is Direction.TO_DATAVERSE else "FO"
        raise ConfigError(f"DUALBUS_{group}__URL, __CLIENT_ID and __CLIENT_SECRET must be set")
    return chosen
