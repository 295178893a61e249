"""Composition of one producer process: clients from settings, the sources of one origin, the run loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.errors import SourceError
from dualbus.producers.events import EchoFilter
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_inbox import FoEventInbox
from dualbus.producers.fo_poller import FoScanner
from dualbus.producers.fo_queue import EventSource, FoQueueIntake
from dualbus.producers.fo_reader import FoReader
from dualbus.producers.fo_rows import EntityLocks, fo_fields_read
from dualbus.producers.fo_webhook_process import serve_webhook_process
from dualbus.producers.poll_pace import PollPace
from dualbus.producers.publisher import Publisher
from dualbus.producers.settings import FoEvents, ProducerOptions
from dualbus.producers.tables import SourceTable, source_tables
from dualbus.shared.api import ApiClient, dataverse_user_id
from dualbus.shared.bus import async_bus_client
from dualbus.shared.bus_types import AsyncBusClient
from dualbus.shared.envelope import Origin
from dualbus.shared.errors import ConfigError, DualbusError, TransientError
from dualbus.shared.http import async_http_client
from dualbus.shared.identity import open_tokens
from dualbus.shared.maps import load_maps
from dualbus.shared.prerequisites import require_prepared
from dualbus.shared.retry import Backoff, RetryPolicy
from dualbus.shared.settings import ApiSettings, Settings
from dualbus.shared.stopping import done_unless_stopped
from dualbus.shared.topology import default_topology

__all__ = ["DATAVERSE_API_PATH", "ProducerContext", "open_context", "run_producer"]

_log = logging.getLogger(__name__)
_Task = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
DATAVERSE_API_PATH = "/api/data/v9.2"
# After a failed round the next one comes sooner than the schedule would run it: 1 s doubling, up to 1 s of
# jitter, never later than the schedule (``_every`` caps the wait at the interval). A round's reads and
# publishes have retried their own failures already; what is left is an outage, waited out with backoff.
ROUND_RETRY = RetryPolicy(on=(TransientError, SourceError), attempts=None, initial_wait=1.0, max_wait=60.0)


@dataclass(slots=True)
class ProducerContext:
    """Everything a source needs, opened together and closed together."""

    origin: Origin
    api: ApiClient
    publisher: Publisher
    store: CheckpointStore
    echo: EchoFilter
    tables: list[SourceTable]
    bus: AsyncBusClient


async def _own_user_id(origin: Origin, api: ApiClient) -> tuple[str, ...]:
    """Dataverse's id of the application user the producer runs as, which is dualbus's own."""
    if origin is not Origin.DATAVERSE:
        return ()
    user = await dataverse_user_id(api)
    return (user,) if user else ()


def api_settings(settings: Settings, origin: Origin) -> ApiSettings:
    """The API settings of one origin; ConfigError when they are missing."""
    found = settings.fo if origin is Origin.FO else settings.dataverse
    if found is None:
        raise ConfigError(f"DUALBUS_{origin.value.upper()}__URL and its credentials are not set")
    return found


@asynccontextmanager
async def open_context(
    origin: Origin, settings: Settings, options: ProducerOptions, *, areas: Iterable[str] | None = None
) -> AsyncIterator[ProducerContext]:
    """Open the API client, the Service Bus client, the publisher and the checkpoint store of one origin."""
    if settings.servicebus is None:
        raise ConfigError("DUALBUS_SERVICEBUS__CONNECTION_STRING or __NAMESPACE is not set")
    source = api_settings(settings, origin)
    base = source.url.rstrip("/") + (DATAVERSE_API_PATH if origin is Origin.DATAVERSE else "")
    tables = source_tables(load_maps(), origin, areas)
    store = CheckpointStore.in_state_dir(settings.state_dir, origin.value)
    async with (
        async_http_client(timeout=source.timeout_seconds) as http,
        open_tokens(source) as tokens,
        async_bus_client(settings.servicebus) as bus,
    ):
        api = ApiClient(base, tokens, http)
        publisher = Publisher(bus, default_topology(), max_batch_bytes=options.max_batch_bytes)
        echo = EchoFilter.of(source.client_id, *options.own_users, *await _own_user_id(origin, api))
        try:
            yield ProducerContext(origin, api, publisher, store, echo, tables, bus)
        finally:
            await publisher.close()
            store.close()


async def run_producer(
    origin: Origin,
    settings: Settings,
    options: ProducerOptions,
    *,
    areas: Iterable[str] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run one origin's producer until ``stop`` is set (or SIGTERM/SIGINT arrives)."""
    stop = stop or _stop_on_signals()
    async with open_context(origin, settings, options, areas=areas) as context:
        tasks = (
            _dataverse_tasks(context, options)
            if origin is Origin.DATAVERSE
            else _fo_tasks(context, options, settings)
        )
        _log.info(
            "producer started", extra={"origin": origin.value, "tables": [t.name for t in context.tables]}
        )
        try:
            async with asyncio.TaskGroup() as group:
                for task in tasks:
                    group.create_task(task(stop))
        except* DualbusError as failures:
            # One line for the operator (the webhook's port taken, say), not a group's traceback.
            for other in failures.exceptions[1:]:
                _log.error("the producer also failed: %s", other)
            raise failures.exceptions[0] from None


async def _fo_prepared(context: ProducerContext, stop: asyncio.Event) -> None:
    """Every field the producer reads is there, dualbus's extension fields above all (docs/deploy.md).

    F&O refuses a whole read naming a field the entity lacks: the producer stops, naming every such field,
    rather than fail every round. Asked beside the other tasks, not before them: while F&O does not answer,
    the webhook still takes events in (they are read back once F&O answers).
    """
    await require_prepared(context.api, "fo", fo_fields_read(context.tables), root="data", stop=stop)


def _dataverse_tasks(context: ProducerContext, options: ProducerOptions) -> list[_Task]:
    """One schedule per table: a table that is changing is read again sooner (``PollPace``)."""
    source = DataverseSource(context.api, context.tables, context.publisher, context.store, context.echo)
    pace = PollPace(
        options.poll_interval_seconds,
        options.busy_poll_interval_seconds,
        options.extra_polls_per_second,
    )
    return [_table_task(source, table, pace) for table in context.tables]


def _table_task(source: DataverseSource, table: SourceTable, pace: PollPace) -> _Task:
    return lambda stop: _every(pace.interval, partial(source.poll_table, table), stop, pace=pace.table())


def _fo_tasks(context: ProducerContext, options: ProducerOptions, settings: Settings) -> list[_Task]:
    """The check for the fields it reads, the full scan, and the data event intake when events are on (then
    the scan runs less often)."""
    reader, clock, locks = FoReader(context.api), VersionClock(context.store), EntityLocks()
    scanner = FoScanner(reader, context.tables, context.publisher, context.store, clock, locks=locks)
    prepared: _Task = partial(_fo_prepared, context)
    if options.fo_events is FoEvents.NONE:
        return [prepared, lambda stop: _every(options.poll_interval_seconds, scanner.scan_once, stop)]
    # The first scan runs at once: it closes whatever gap the producer was down for, however long.
    tasks: list[_Task] = [
        prepared,
        lambda stop: _every(options.fo_scan_interval_seconds, scanner.scan_once, stop),
    ]
    handler = FoEventHandler(reader, context.tables, context.publisher, context.store, clock, locks=locks)
    if options.fo_events is FoEvents.WEBHOOK:
        inbox = FoEventInbox(context.store, handler)
        tasks.append(inbox.run)
        json_logs = settings.log_format == "json"
        tasks.append(
            lambda stop: serve_webhook_process(
                inbox, options, stop, log_level=settings.log_level, log_json=json_logs
            )
        )
    else:
        source = EventSource(options.events_queue, options.events_topic, options.events_subscription)
        intake = FoQueueIntake(context.bus, source, handler)
        tasks.append(intake.run)
    return tasks


async def _every(
    interval: float,
    step: Callable[[], Coroutine[Any, Any, int]],
    stop: asyncio.Event,
    *,
    retry: RetryPolicy = ROUND_RETRY,
    pace: Callable[[int], float] | None = None,
) -> None:
    """Start a round of ``step`` every ``interval`` seconds until ``stop``; a failed round is run again after
    a backoff.

    ``pace``, given what a round returned, says how long after it started the next one starts instead
    (``PollPace.table``: sooner while the table is changing).

    Rounds start ``interval`` apart, not ``interval`` after the last one ended: a change waits at most one
    interval plus one round to be read, not both added to the time the round itself took (a round that
    takes longer than the interval is followed by the next at once).
    A step's reads and publishes retry their transient failures themselves (``shared.retry``); a round that
    fails all the same is run again under ``retry``, its waits growing with the failures in a row but never
    beyond ``interval``. After a round that went well the schedule takes over again.
    """
    backoff = Backoff(replace(retry, max_wait=min(retry.max_wait, interval)), stop)
    while not stop.is_set():
        started = time.monotonic()
        # A stop cancels a round under way: its reads retry on their own for a while (an F&O outage keeps
        # one busy for seconds), which kept a deploy waiting as long. A round checkpoints only after it
        # published, so what it was doing is read and published again after the restart, under the same
        # event ids, as after a crash.
        running = await done_unless_stopped(stop, step())
        if running.cancelled():
            return
        try:
            done = running.result()
        except (TransientError, SourceError) as exc:
            # A source answering nonsense is fixed on its side; the next round may well succeed.
            _log.warning("poll round failed, running it again after a backoff: %s", exc)
            await backoff.wait(exc)
            continue
        backoff.reset()
        # The schedule, not a retry: the next round of a producer that is keeping up.
        rest = (pace(done) if pace else interval) - (time.monotonic() - started)
        if rest > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=rest)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
