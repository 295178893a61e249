"""Consumer throughput against a bare SDK loop on the same emulator, and the consumer's memory and CPU.

Prints one JSON object: per round, events/s of the consumer applying currency changes to the Dataverse twin
(limits off) and of a bare azure-servicebus loop over the same session subscription (receive batches of the
consumer's size from the next free session, settle them, let the session go on a short batch, as many
sessions at once as the consumer), their ratio (target >= 0.9); the median ratio and its spread (the
rounds' lowest and highest ratio relative to the median), CPU seconds per 1000 messages of each loop's
process, and the consumer's resident memory (target <= 150 MB).

Both loops run the same way, so that their rounds compare: each run is a fresh child process (its own
interpreter, nothing warmed by the other loop) against a fresh emulator holding just that run's messages,
and the two loops take turns in going first from one round to the next, so that neither gains from the
machine's drift. The emulator and the twin run in processes of their own, so neither shares an interpreter
lock with the loop measured. A rate counts from a tenth of the messages settled to the last, leaving out
the start-up (interpreter, connection, first sessions), which is no per-message cost and scatters most. CPU is
the child's own over the whole loop (``os.times``), which a loaded machine barely moves. The consumer first
applies ``--warmup`` changes untimed, so that the twin's first requests fall in no round.
Bounded: ``--events`` messages per run, every wait capped.

Run from the repository root: python bench/consumer.py (or python -m bench.consumer) [--events N]
[--concurrency N] [--rounds N] [--warmup N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import psutil
from azure.servicebus import NEXT_AVAILABLE_SESSION
from azure.servicebus.aio import ServiceBusClient
from pydantic import SecretStr

if __package__ in {None, ""}:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dualbus.consumers import ConsumerMetrics, RuntimeOptions, run_consumer
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
_TOPIC, _SUBSCRIPTION = "dualbus.currency", Direction.TO_DATAVERSE
_TIME_LIMIT_SECONDS = 120.0
# The consumer's own receive size (RuntimeOptions.batch_size): the bare loop takes the same batches.
_BATCH = RuntimeOptions().batch_size
_LOOPS = ("bare", "consumer")
# The consumer's outcomes that complete a message (anything else would be a failure of the benchmark).
_SETTLED = ("applied", "unchanged", "skipped-stale")


def _serve_dataverse(conn: Connection) -> None:
    """Child process: run the Dataverse twin, limits off, until the parent says stop."""
    twin = start_dataverse(clients={_CLIENT_ID: _SECRET}, limits=None)
    conn.send((twin.url, twin.identity.token_url(twin.tenant), twin.audience, str(twin.ca_bundle)))
    conn.recv()
    twin.stop()


def _events(count: int, run: str, first_version: int) -> list[Envelope]:
    # 26 * 26 * 26 three-letter codes is more than any bounded run needs; versions keep each one fresh.
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes = [a + b + c for a in letters for b in letters for c in letters]
    return [
        Envelope.for_change(
            origin=Origin.FO,
            area="currency",
            entity="Currencies",
            key={"CurrencyCode": codes[n % len(codes)]},
            operation=Operation.UPDATE,
            # Each run's own versions and names: no change is stale, a duplicate, or without effect.
            source_version=first_version + n,
            time=datetime.now(UTC),
            data={"Name": f"{run} {first_version + n}", "Symbol": "$"},
        )
        for n in range(count)
    ]


def _publish(settings: ServiceBusSettings, events: list[Envelope]) -> None:
    with bus_client(settings) as client, client.get_topic_sender(_TOPIC) as sender:
        for start in range(0, len(events), 100):
            sender.send_messages([to_message(e) for e in events[start : start + 100]])


class _Clock:
    """When a tenth of the messages had been settled, and when the latest were: the rate in between leaves
    out the start-up (connecting, the first sessions, the consumer's first token and first write), which is
    no per-message cost and scatters most. Not from the first message settled: what was received while the
    first one waited may settle in a burst just after it, a burst whose size depends on the start-up."""

    def __init__(self, count: int) -> None:
        self.start_at = max(count // 10, 1)
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] | None = None

    def tick(self, settled: int) -> None:
        now = (time.perf_counter(), settled)
        if self.first is None and settled >= self.start_at:
            self.first = now
        self.last = now

    def figures(self) -> dict[str, float]:
        if self.first is None or self.last is None or self.last[1] == self.first[1]:
            return {"steady_seconds": 0.0, "steady_settled": 0}
        return {
            "steady_seconds": self.last[0] - self.first[0],
            "steady_settled": self.last[1] - self.first[1],
        }


async def _bare_loop(connection_string: str, count: int, concurrency: int, clock: _Clock) -> int:
    """Receive and complete ``count`` messages with the plain SDK, sessions as the consumer takes them."""
    done = 0
    started = time.perf_counter()

    async def worker(client: ServiceBusClient) -> None:
        nonlocal done
        while done < count and time.perf_counter() - started < _TIME_LIMIT_SECONDS:
            receiver = client.get_subscription_receiver(
                _TOPIC, _SUBSCRIPTION.value, session_id=NEXT_AVAILABLE_SESSION, max_wait_time=0.5
            )
            try:
                await receiver.__aenter__()
                # The consumer's session strategy: batches of its size, the session let go after a short
                # one; a batch's messages (one record each here) are settled concurrently, as its are.
                full = True
                while full:
                    batch = await receiver.receive_messages(max_message_count=_BATCH, max_wait_time=0.3)
                    full = len(batch) == _BATCH
                    await asyncio.gather(*(receiver.complete_message(m) for m in batch))
                    done += len(batch)
                    clock.tick(done)
            except Exception:  # noqa: BLE001, S112 - no free session within the wait: look again
                continue
            finally:
                # As the consumer: the receiver closes in the background (the SDK's close sits out a
                # keep-alive sleep), and the worker takes the next session at once.
                closing.append(asyncio.create_task(receiver.close()))

    async with ServiceBusClient.from_connection_string(connection_string) as client:
        closing: list[asyncio.Task[None]] = []
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        await asyncio.gather(*closing, return_exceptions=True)
    return done


async def _consumer_run(
    settings: Settings, count: int, concurrency: int, clock: _Clock
) -> tuple[int, dict[str, int]]:
    """Have the consumer apply ``count`` changes; returns how many it settled, and its outcomes."""
    stop = asyncio.Event()
    metrics = ConsumerMetrics(area="currency", direction=_SUBSCRIPTION.value)
    options = RuntimeOptions(concurrency=concurrency, session_wait=0.5, idle_wait=0.3)
    started = time.perf_counter()
    task = asyncio.create_task(
        run_consumer(settings, "currency", _SUBSCRIPTION, stop=stop, options=options, metrics=metrics)
    )
    settled = 0
    while settled < count and not task.done() and time.perf_counter() - started < _TIME_LIMIT_SECONDS:
        await asyncio.sleep(0.02)
        settled = sum(metrics.counts[k] for k in _SETTLED)
        clock.tick(settled)
    stop.set()
    await task
    return settled, dict(metrics.counts)


def _run_loop(conn: Connection, loop: str, settings: dict[str, Any], count: int, concurrency: int) -> None:
    """Child process: run one loop over ``count`` messages; send back its seconds, CPU seconds and more."""
    logging.basicConfig(level=logging.WARNING)
    connection_string = settings["servicebus"]["connection_string"]
    cpu, started = os.times(), time.perf_counter()
    outcomes: dict[str, int] = {}
    clock = _Clock(count)
    if loop == "bare":
        settled = asyncio.run(_bare_loop(connection_string, count, concurrency, clock))
    else:
        run = _consumer_run(Settings.model_validate(settings), count, concurrency, clock)
        settled, outcomes = asyncio.run(run)
    seconds, after = time.perf_counter() - started, os.times()
    cpu_seconds = (after.user - cpu.user) + (after.system - cpu.system)
    rss_mb = psutil.Process().memory_info().rss / 2**20
    figures = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "settled": settled,
        "rss_mb": rss_mb,
        "outcomes": outcomes,
    }
    conn.send(figures | clock.figures())


@dataclass(frozen=True)
class _Run:
    seconds: float
    cpu_seconds: float
    settled: int
    rss_mb: float
    outcomes: dict[str, int]
    steady_seconds: float
    steady_settled: int

    @property
    def rate(self) -> float:
        """Messages settled per second once the first was (0 when the run settled too few to tell)."""
        return self.steady_settled / self.steady_seconds if self.steady_seconds else 0.0

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu_seconds / max(self.settled, 1)


def _one_run(
    loop: str, dataverse: ApiSettings, args: argparse.Namespace, first_version: int, count: int
) -> _Run:
    """One loop in a fresh child process against a fresh emulator holding ``count`` new changes."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "Config.json"
        config.write_bytes(orjson.dumps(render_emulator_config(default_topology())))
        with start_subprocess(config_file=config) as emulator:
            bus = ServiceBusSettings(connection_string=SecretStr(emulator.connection_string))
            _publish(bus, _events(count, loop, first_version))
            settings = Settings(servicebus=bus, dataverse=dataverse).model_dump(mode="python")
            settings["servicebus"]["connection_string"] = emulator.connection_string
            settings["dataverse"]["client_secret"] = _SECRET
            parent, child = context.Pipe()
            process = context.Process(target=_run_loop, args=(child, loop, settings, count, args.concurrency))
            process.start()
            try:
                if not parent.poll(_TIME_LIMIT_SECONDS + 60):
                    raise SystemExit(f"benchmark aborted: the {loop} loop did not finish")
                figures = parent.recv()
            finally:
                process.join(timeout=30)
    return _Run(**figures)


def _spread(values: list[float]) -> dict[str, float]:
    median = statistics.median(values)
    return {
        "median": round(median, 3),
        "low": round(min(values) / median - 1, 3),
        "high": round(max(values) / median - 1, 3),
    }


def main() -> None:
    """Run the rounds, both loops each, and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1500, help="messages per run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds of both loops, which take turns to go first"
    )
    parser.add_argument("--warmup", type=int, default=200, help="changes the consumer applies untimed first")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    parent, child = multiprocessing.Pipe()
    twin = multiprocessing.Process(target=_serve_dataverse, args=(child,), daemon=True)
    twin.start()
    url, token_url, audience, ca_bundle = parent.recv()
    dataverse = ApiSettings(
        url=url,
        client_id=_CLIENT_ID,
        client_secret=SecretStr(_SECRET),
        token_url=token_url,
        ca_bundle=Path(ca_bundle),
        audience=audience,
    )
    # Untimed: the twin serves its first requests (TLS, tokens, $batch) before any round is measured; in
    # earlier runs the first round was the slowest for the consumer, whichever loop went first.
    if args.warmup:
        _one_run("consumer", dataverse, args, 1, args.warmup)
    rounds: list[dict[str, _Run]] = []
    for index in range(args.rounds):
        order = _LOOPS if index % 2 == 0 else _LOOPS[::-1]
        # Versions grow from run to run, so that the twin never holds a change as stale.
        rounds.append(
            {
                loop: _one_run(
                    loop, dataverse, args, 1 + args.warmup + (2 * index + turn) * args.events, args.events
                )
                for turn, loop in enumerate(order)
            }
        )
    parent.send("stop")
    twin.join(timeout=10)
    ratios = [r["consumer"].rate / r["bare"].rate for r in rounds]
    print(
        orjson.dumps(
            {
                "events": args.events,
                "concurrency": args.concurrency,
                "warmup_events": args.warmup,
                "rounds": [
                    {
                        "first": "bare" if index % 2 == 0 else "consumer",
                        "bare_events_per_s": round(r["bare"].rate, 1),
                        "consumer_events_per_s": round(r["consumer"].rate, 1),
                        "ratio": round(ratio, 3),
                    }
                    for index, (r, ratio) in enumerate(zip(rounds, ratios, strict=True))
                ],
                # The median of the rounds' own ratios, and how far the lowest and highest lie from it.
                "ratio": _spread(ratios),
                "ratio_target": 0.9,
                "bare_events_per_s": _spread([r["bare"].rate for r in rounds]),
                "consumer_events_per_s": _spread([r["consumer"].rate for r in rounds]),
                "cpu_seconds_per_1000": {
                    loop: _spread([r[loop].cpu_per_1000 for r in rounds]) for loop in _LOOPS
                },
                "consumer_rss_mb": round(max(r["consumer"].rss_mb for r in rounds), 1),
                "rss_target_mb": 150,
                "settled": {loop: [r[loop].settled for r in rounds] for loop in _LOOPS},
                "consumer_outcomes": [r["consumer"].outcomes for r in rounds],
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    try:
        main()
    except TransientError as exc:
        raise SystemExit(f"benchmark aborted: {exc}") from exc
