"""Consumer throughput against a bare SDK loop running at the same time, and the consumer's memory and CPU.

Prints one JSON object. In every round the consumer (applying currency changes to the Dataverse twin, limits
off) and a bare azure-servicebus loop (one TLS context for all its connections, as the consumer's client has;
the consumer's session strategy: as many sessions worked at once as the consumer, as many opened ahead,
batches of its size prefetched and settled one by one, a session let go on a short batch when another waits)
run at once against one fresh emulator, each on a session subscription of its own holding the same messages:
one publish to the topic fills both before the round starts. Per round: each loop's events/s from the common
start signal to its last message settled, their ratio (target >= 0.9), the start-up in each (seconds to its
first and to a tenth of its messages), the rates over the seconds in which both loops were steady at once, the
CPU seconds per 1000 messages of each loop's process and the emulator's CPU; over the rounds: the median
ratio, its spread (the lowest and highest ratio relative to the median), whether every round lies within ±10 %
of the median, and the consumer's resident memory (target <= 150 MB).

Running the two loops at once is what makes the rounds agree: taken one after the other, a change in the
machine between the two runs (another process, the CPU's clock) landed in their ratio. Both loops run the
same way: each in a child process of its own started the same way (its own interpreter, nothing warmed by
the other loop), both held at a barrier until each has imported everything and then let go together. The
emulator and the twin run in processes of their own, so neither shares an interpreter lock with a loop.
Each loop notes when it settled every message (the consumer as it counts the outcome, the bare loop as each
completion returns). The ratio is of the times to settle all messages from the common start: every message
counts, so it spans every session turn, while the window in which both loops are steady lasts a few seconds
and catches a varying share of a turn (on a loaded machine its rounds scattered twice as far; it is shown
beside, ``bench/_rounds.py``). The drain time holds each loop's start-up (the consumer's is longer: its
token, who-am-I and pause state), and the loop that finishes second runs its last messages alone. CPU is each
child's own from the start signal to its end (``os.times``). The consumer first applies ``--warmup`` changes
untimed, alone, so that the twin's first requests fall in no round.
Bounded: ``--events`` messages per loop and round, every wait capped.

Run from the repository root: python bench/consumer.py (or python -m bench.consumer) [--events N]
[--concurrency N] [--rounds N] [--warmup N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import multiprocessing
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import certifi
import orjson
import psutil
from azure.servicebus import NEXT_AVAILABLE_SESSION
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver
from pydantic import SecretStr

if __package__ in {None, ""}:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._machine import machine_figures
from bench._rounds import TRIM, drain_rate, rate_within, spread, steady_window
from dualbus.consumers import ConsumerMetrics, RuntimeOptions, run_consumer
from dualbus.consumers._supply import Supply
from dualbus.sandbox.dataverse import start_dataverse
from dualbus.sandbox.servicebus.launcher import start_subprocess
from dualbus.shared.bus import bus_client
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import TransientError
from dualbus.shared.messages import to_message
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ApiSettings, ServiceBusSettings, Settings
from dualbus.shared.topology import Direction, default_topology

_CLIENT_ID, _SECRET = "dualbus", "bench-secret"
_AREA, _DIRECTION = "currency", Direction.TO_DATAVERSE
_TOPIC_SPEC = default_topology().topic(_AREA)
_TOPIC = _TOPIC_SPEC.name
# The bare loop's subscription: a copy of the consumer's (same rule, sessions, lock), so that one publish
# puts the same messages in both.
_BARE_SUBSCRIPTION = "bench-bare"
_TIME_LIMIT_SECONDS = 120.0
# How long a child may take to start (a spawned interpreter importing the SDK and dualbus, on a busy machine).
_START_LIMIT_SECONDS = 90.0
# The consumer's own receive size (RuntimeOptions.batch_size): the bare loop takes the same batches.
_BATCH = RuntimeOptions().batch_size
# How long each loop waits for more of a session's messages before it lets the session go: short, since
# every message is there before the round starts (the consumer is given the same, below).
_IDLE = 0.3
# How long one read on a session receiver's connection waits (the consumer's receivers' socket_timeout).
_READ_TIMEOUT = RuntimeOptions().read_timeout
# As the consumer's runtime looks at a kept session while another session waits.
_LOOK_AGAIN = RuntimeOptions().kept_look
# And at one just taken, before it lets it go for another; here the idle wait (0.3 s) ends it first, in both
# loops: a session just taken is kept until it brings messages or is dry that long.
_FIRST_LOOK = RuntimeOptions().first_look
_LOOPS = ("bare", "consumer")
# The consumer's outcomes that complete a message (anything else would be a failure of the benchmark).
_SETTLED = ("applied", "unchanged", "skipped-stale")
_RATIO_TARGET, _TOLERANCE = 0.9, 0.10
_IMPORTED_WHEN_MADE = (
    "azure.core.pipeline.transport._aiohttp",
    "azure.core.rest._aiohttp",
    "httpcore",
    "anyio._backends._asyncio",
)


def _serve_dataverse(conn: Connection) -> None:
    """Child process: run the Dataverse twin, limits off, until the parent says stop."""
    twin = start_dataverse(clients={_CLIENT_ID: _SECRET}, limits=None)
    conn.send((twin.url, twin.identity.token_url(twin.tenant), twin.audience, str(twin.ca_bundle)))
    conn.recv()
    twin.stop()


def _events(count: int, first_version: int) -> list[Envelope]:
    # 26 * 26 * 26 three-letter codes is more than any bounded run needs; versions keep each one fresh.
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = [a + b + c for a in letters for b in letters for c in letters]
    return [
        Envelope.for_change(
            origin=Origin.FO,
            area=_AREA,
            entity="Currencies",
            key={"CurrencyCode": codes[n % len(codes)]},
            operation=Operation.UPDATE,
            # Each round's own versions and names: no change is stale, a duplicate, or without effect.
            source_version=first_version + n,
            time=datetime.now(UTC),
            data={"Name": f"bench {first_version + n}", "Symbol": "$"},
        )
        for n in range(count)
    ]


def _publish(settings: ServiceBusSettings, events: list[Envelope]) -> None:
    with bus_client(settings) as client, client.get_topic_sender(_TOPIC) as sender:
        for start in range(0, len(events), 100):
            sender.send_messages([to_message(e) for e in events[start : start + 100]])


def _emulator_config() -> dict[str, Any]:
    """The pipeline's topology, plus the bare loop's copy of the consumer's subscription."""
    config = render_emulator_config(default_topology())
    (namespace,) = config["UserConfig"]["Namespaces"]
    (topic,) = (t for t in namespace["Topics"] if t["Name"] == _TOPIC)
    (consumers,) = (s for s in topic["Subscriptions"] if s["Name"] == _DIRECTION.value)
    topic["Subscriptions"].append(consumers | {"Name": _BARE_SUBSCRIPTION})
    return config


class _BareLoop:
    """The plain SDK: receive and complete messages, sessions taken as the consumer takes them.

    The consumer's session strategy (``consumers/_supply.py``, ``Consumer._drain``), and its receivers'
    options (prefetch, read timeout): sessions opened ahead
    of the workers, at most one per worker, worked by whichever worker is free; batches of the consumer's
    size; a session let go after a short batch when another waits, taken, else kept and received in short
    looks until dry for the idle wait; messages settled one at a time, as the consumer's are (the SDK's
    link does not take concurrent settlements: a batch completed all at once took 0.2 s, one by one 10 ms).
    """

    def __init__(self, count: int, concurrency: int, times: list[float]) -> None:
        self.count, self.concurrency, self.times = count, concurrency, times
        self.done = 0
        self.started = time.monotonic()
        self.finished = asyncio.Event()
        self.closing: list[asyncio.Task[None]] = []
        # As the consumer caps its sessions: no more than the topic has, and its looks.
        self.supply: Supply[ServiceBusReceiver] = Supply(
            ahead=concurrency,
            release=self._release,
            most=_TOPIC_SPEC.ordering_buckets,
            looks=RuntimeOptions().looks,
        )

    async def run(self, connection_string: str) -> int:
        """Run until ``count`` messages are settled (or the time limit); the number settled."""
        # One TLS context for every connection, as the consumer's client has (shared/bus.py): left to itself
        # the SDK builds one and loads the CA bundle into it for each session's connection, which took more
        # than half of this loop's CPU, a cost of the SDK's defaults that neither loop should be measured by.
        tls = ssl.create_default_context(cafile=certifi.where())
        async with ServiceBusClient.from_connection_string(connection_string, ssl_context=tls) as client:
            tasks = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
            tasks += [asyncio.create_task(self._taker(client)) for _ in range(self.concurrency)]
            # A worker ends when all are settled, or at the time limit.
            settled = asyncio.ensure_future(self.finished.wait())
            await asyncio.wait([settled, *tasks], return_when=asyncio.FIRST_COMPLETED)
            settled.cancel()
            # All settled: as the consumer stops, so do the tasks still waiting for a session (none is
            # left), instead of sitting out the SDK's retries for one.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.supply.release_all()
            await asyncio.gather(*self.closing, return_exceptions=True)
        return self.done

    def _going(self) -> bool:
        return not self.finished.is_set() and time.monotonic() - self.started < _TIME_LIMIT_SECONDS

    async def _release(self, receiver: ServiceBusReceiver) -> None:
        # As the consumer: the receiver closes in the background (the SDK's close sits out a keep-alive
        # sleep), and the worker takes the next session at once.
        self.closing.append(asyncio.create_task(receiver.close()))

    async def _take(self, client: ServiceBusClient) -> ServiceBusReceiver | None:
        receiver = client.get_subscription_receiver(
            _TOPIC,
            _BARE_SUBSCRIPTION,
            session_id=NEXT_AVAILABLE_SESSION,
            max_wait_time=0.5,
            prefetch_count=_BATCH,  # as the consumer's session receivers: messages kept as they come
            socket_timeout=_READ_TIMEOUT,
        )
        try:
            await receiver.__aenter__()
        except Exception:  # noqa: BLE001 - no free session within the wait: look again
            await self._release(receiver)
            return None
        return receiver

    async def _taker(self, client: ServiceBusClient) -> None:
        while self._going():
            await self.supply.take_with(partial(self._take, client), self.finished)

    async def _worker(self) -> None:
        while self._going():
            receiver = await self.supply.next(self.finished)
            if receiver is None:
                continue
            try:
                await self._drain(receiver)
            except Exception:  # noqa: BLE001, S112 - a lost session: take the next
                continue
            finally:
                self.supply.finished()
                await self._release(receiver)

    async def _drain(self, receiver: ServiceBusReceiver) -> None:
        dry, received = 0.0, False
        while dry < _IDLE:
            wait = min(_LOOK_AGAIN, _IDLE - dry)
            batch = await receiver.receive_messages(max_message_count=_BATCH, max_wait_time=wait)
            for message in batch:
                await receiver.complete_message(message)
                self.times.append(time.monotonic())
            self.done += len(batch)
            if self.done >= self.count:
                self.finished.set()
            dry = 0.0 if batch else dry + wait
            received = received or bool(batch)
            if len(batch) < _BATCH and not self.supply.empty and (received or dry >= _FIRST_LOOK):
                return


@dataclass
class _TimedMetrics(ConsumerMetrics):
    """The consumer's metrics, noting when each message was settled and when the last one was."""

    expected: int = 0
    times: list[float] = field(default_factory=list)
    all_settled: asyncio.Event = field(default_factory=asyncio.Event)

    def outcome(self, name: str, reason: str | None = None) -> None:
        super().outcome(name, reason)
        if name in _SETTLED:
            self.times.append(time.monotonic())
            if len(self.times) >= self.expected:
                self.all_settled.set()


async def _consumer_run(
    settings: Settings, count: int, concurrency: int, times: list[float]
) -> tuple[int, dict[str, int]]:
    """Have the consumer apply ``count`` changes; returns how many it settled, and its outcomes."""
    stop = asyncio.Event()
    metrics = _TimedMetrics(area=_AREA, direction=_DIRECTION.value, expected=count, times=times)
    options = RuntimeOptions(concurrency=concurrency, session_wait=0.5, idle_wait=_IDLE)
    task = asyncio.create_task(
        run_consumer(settings, _AREA, _DIRECTION, stop=stop, options=options, metrics=metrics)
    )
    settled = asyncio.create_task(metrics.all_settled.wait())
    # Ends when every message is settled, when the consumer stops by itself (a failure), or at the limit.
    await asyncio.wait({task, settled}, timeout=_TIME_LIMIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
    settled.cancel()
    stop.set()
    await task
    return len(times), dict(metrics.counts)


def _run_loop(
    conn: Connection,
    start: threading.Barrier,
    *,
    loop: str,
    settings: dict[str, Any],
    count: int,
    concurrency: int,
) -> None:
    """Child process: await the start signal, run one loop over ``count`` messages, send back its figures."""
    logging.basicConfig(level=logging.WARNING)
    connection_string = settings["servicebus"]["connection_string"]
    consumer_settings = Settings.model_validate(settings)
    times: list[float] = []
    outcomes: dict[str, int] = {}
    if loop == "consumer":
        # Imports made only when the consumer's clients are made, no part of throughput, made before the
        # start as every other one is: azure-identity's async HTTP transport (aiohttp, 0.3 s and more) and
        # httpx's transport (httpcore, with its anyio and trio backends, about 0.1 s).
        for module in _IMPORTED_WHEN_MADE:
            importlib.import_module(module)
    start.wait(timeout=_START_LIMIT_SECONDS)  # everything imported: go when the other loop goes
    cpu, started = os.times(), time.monotonic()
    if loop == "bare":
        settled = asyncio.run(_BareLoop(count, concurrency, times).run(connection_string))
    else:
        settled, outcomes = asyncio.run(_consumer_run(consumer_settings, count, concurrency, times))
    after = os.times()
    conn.send(
        {
            "started": started,
            "ended": time.monotonic(),
            "cpu_seconds": (after.user - cpu.user) + (after.system - cpu.system),
            "settled": settled,
            "rss_mb": psutil.Process().memory_info().rss / 2**20,
            "outcomes": outcomes,
            "times": times,
        }
    )


@dataclass(frozen=True)
class _Run:
    """One loop's figures in one round."""

    started: float
    ended: float
    cpu_seconds: float
    settled: int
    rss_mb: float
    outcomes: dict[str, int]
    times: list[float]

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu_seconds / max(self.settled, 1)

    @property
    def rate(self) -> float:
        """Messages per second from the start signal to the last one settled."""
        return drain_rate(self.times, self.started)

    def seconds_to(self, index: int) -> float | None:
        """From the start signal to the ``index``-th message settled (from 0; -1 the last), None if none."""
        return self.times[index] - self.started if -len(self.times) <= index < len(self.times) else None


@dataclass(frozen=True)
class _Round:
    runs: dict[str, _Run]
    emulator_cpu_seconds: float

    @property
    def ratio(self) -> float:
        return self.runs["consumer"].rate / self.runs["bare"].rate

    def while_both_ran(self) -> dict[str, float] | None:
        """Each loop's events/s over the window in which both were steady (None if never at once)."""
        window = steady_window([run.times for run in self.runs.values()])
        if window is None:
            return None
        rates = {loop: rate_within(run.times, window) for loop, run in self.runs.items()}
        return rates | {"window_seconds": window[1] - window[0], "ratio": rates["consumer"] / rates["bare"]}


def _children_finish(
    processes: Mapping[str, BaseProcess], pipes: Mapping[str, Connection]
) -> dict[str, _Run]:
    """Each child's figures, within the time limit; a child that overstays is stopped and the run aborted."""
    deadline = time.monotonic() + _TIME_LIMIT_SECONDS + 60
    runs = {}
    try:
        for loop, pipe in pipes.items():
            if not pipe.poll(max(deadline - time.monotonic(), 0)):
                raise SystemExit(f"benchmark aborted: the {loop} loop did not finish")
            runs[loop] = _Run(**pipe.recv())
            if not runs[loop].times:
                raise SystemExit(f"benchmark aborted: the {loop} loop settled no message")
    finally:
        for process in processes.values():
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    return runs


def _round(
    loops: tuple[str, ...], dataverse: ApiSettings, concurrency: int, count: int, first_version: int
) -> _Round:
    """The ``loops`` at once, each in a fresh child process, against a fresh emulator holding the messages:
    ``count`` changes, versions from ``first_version`` on."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "Config.json"
        config.write_bytes(orjson.dumps(_emulator_config()))
        with start_subprocess(config_file=config) as emulator:
            bus = ServiceBusSettings(connection_string=SecretStr(emulator.connection_string))
            _publish(bus, _events(count, first_version))
            settings = Settings(servicebus=bus, dataverse=dataverse).model_dump(mode="python")
            settings["servicebus"]["connection_string"] = emulator.connection_string
            settings["dataverse"]["client_secret"] = _SECRET
            start = context.Barrier(len(loops) + 1)
            pipes, processes = {}, {}
            for loop in loops:
                pipes[loop], child = context.Pipe(duplex=False)
                processes[loop] = context.Process(
                    target=_run_loop,
                    args=(child, start),
                    kwargs={"loop": loop, "settings": settings, "count": count, "concurrency": concurrency},
                )
                processes[loop].start()
            broker = psutil.Process(emulator.pid)
            try:
                start.wait(timeout=_START_LIMIT_SECONDS)
            except threading.BrokenBarrierError:
                for process in processes.values():
                    process.terminate()
                raise SystemExit("benchmark aborted: a loop's process did not start in time") from None
            emulator_cpu = sum(broker.cpu_times()[:2])
            runs = _children_finish(processes, pipes)
            emulator_cpu = sum(broker.cpu_times()[:2]) - emulator_cpu
    return _Round(runs=runs, emulator_cpu_seconds=emulator_cpu)


def _round_figures(r: _Round) -> dict[str, Any]:
    both = r.while_both_ran()
    return {
        "bare_events_per_s": round(r.runs["bare"].rate, 1),
        "consumer_events_per_s": round(r.runs["consumer"].rate, 1),
        "ratio": round(r.ratio, 3),
        "drain_seconds": {loop: _rounded(r.runs[loop].seconds_to(-1)) for loop in _LOOPS},
        # The start-up in each loop's time: until its first message, and until a tenth of them, was settled.
        "first_settled_seconds": {loop: _rounded(r.runs[loop].seconds_to(0)) for loop in _LOOPS},
        "tenth_settled_seconds": {
            loop: _rounded(r.runs[loop].seconds_to(int(r.runs[loop].settled * TRIM))) for loop in _LOOPS
        },
        "while_both_ran": {key: round(value, 3) for key, value in both.items()} if both else None,
        "cpu_seconds_per_1000": {loop: round(r.runs[loop].cpu_per_1000, 3) for loop in _LOOPS},
        "emulator_cpu_seconds": round(r.emulator_cpu_seconds, 2),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _report(
    args: argparse.Namespace, rounds: list[_Round], load: dict[str, list[float]], machine: dict[str, Any]
) -> dict[str, Any]:
    """The JSON figures: each round, and the ratio's median, spread and agreement over the rounds."""
    ratio = spread([r.ratio for r in rounds], _TOLERANCE)
    both = [b for b in (r.while_both_ran() for r in rounds) if b is not None]
    complete = all(r.runs[loop].settled == args.events for r in rounds for loop in _LOOPS)
    return {
        "events": args.events,
        "concurrency": args.concurrency,
        "warmup_events": args.warmup,
        "cpu_count": os.cpu_count(),
        # The machine's load (1, 5 and 15 minutes) as the run began and ended: others' work shows here.
        "load_average": load,
        # How fast this machine ran Python as the run began (bench/_machine.py): figures scale with it.
        "python_work_ms": machine["python_work_ms"],
        "rounds": [_round_figures(r) for r in rounds],
        # The median of the rounds' own ratios, how far the lowest and highest lie from it, and whether all
        # lie within the tolerance of it (only rounds in which both loops settled all their messages count).
        "ratio": ratio,
        "ratio_target": _RATIO_TARGET,
        "meets_target": complete and float(ratio["median"]) >= _RATIO_TARGET,
        "rounds_agree": complete and bool(ratio["agree"]),
        # The same, over the seconds in which both loops were steady at once: shorter, so it scatters more.
        "ratio_while_both_ran": spread([b["ratio"] for b in both]) if both else {},
        "bare_events_per_s": spread([r.runs["bare"].rate for r in rounds]),
        "consumer_events_per_s": spread([r.runs["consumer"].rate for r in rounds]),
        "cpu_seconds_per_1000": {
            loop: spread([r.runs[loop].cpu_per_1000 for r in rounds]) for loop in _LOOPS
        },
        "consumer_rss_mb": round(max(r.runs["consumer"].rss_mb for r in rounds), 1),
        "rss_target_mb": 150,
        "settled": {loop: [r.runs[loop].settled for r in rounds] for loop in _LOOPS},
        "consumer_outcomes": [r.runs["consumer"].outcomes for r in rounds],
    }


def main() -> None:
    """Run the rounds, both loops at once in each, and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=6000, help="messages per loop and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each running both loops at once")
    parser.add_argument("--warmup", type=int, default=200, help="changes the consumer applies untimed first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    machine = machine_figures()
    load = {"start": machine["load_average"]}
    parent, child = multiprocessing.Pipe()
    twin = multiprocessing.Process(target=_serve_dataverse, args=(child,), daemon=True)
    twin.start()
    if not parent.poll(_START_LIMIT_SECONDS):
        raise SystemExit("benchmark aborted: the Dataverse twin did not start")
    url, token_url, audience, ca_bundle = parent.recv()
    dataverse = ApiSettings(
        url=url,
        client_id=_CLIENT_ID,
        client_secret=SecretStr(_SECRET),
        token_url=token_url,
        ca_bundle=Path(ca_bundle),
        audience=audience,
        # The twin runs without its service protection limits here, so no request budget to spare either.
        partial_batches_per_second=None,
    )
    try:
        # Untimed: the twin serves its first requests (TLS, tokens, $batch) before any round is measured.
        if args.warmup:
            _round(("consumer",), dataverse, args.concurrency, args.warmup, 1)
        # Versions grow from round to round, so that the twin never holds a change as stale.
        rounds = [
            _round(_LOOPS, dataverse, args.concurrency, args.events, 1 + args.warmup + index * args.events)
            for index in range(args.rounds)
        ]
    finally:
        parent.send("stop")
        twin.join(timeout=10)
    load["end"] = [round(n, 2) for n in os.getloadavg()]
    figures = _report(args, rounds, load, machine)
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    ratio = figures["ratio"]
    agree = "agree" if figures["rounds_agree"] else "do not agree"
    print(
        f"consumer/bare: median {ratio['median']} (target {_RATIO_TARGET}), rounds {ratio['low']:+.1%} / "
        f"{ratio['high']:+.1%} of it: they {agree} within ±{_TOLERANCE:.0%}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    try:
        main()
    except TransientError as exc:
        raise SystemExit(f"benchmark aborted: {exc}") from exc
