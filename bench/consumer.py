"""Consumer throughput against a bare SDK loop on the same emulator, and the consumer's memory.

Prints one JSON object: events/s of the consumer applying currency changes to the Dataverse twin (limits
off), events/s of a bare azure-servicebus receive+complete loop over the same session subscription with the
same concurrency, their ratio (target >= 0.8) and the consumer's resident memory (target <= 150 MB).
The emulator and the twin run in child processes, so neither shares an interpreter lock with the consumer.
Bounded: ``--events`` messages per run (default 1000), every wait capped.

Run from the repository root: python bench/consumer.py (or python -m bench.consumer) [--events N]
[--concurrency N] [--rounds N]
(each round runs both loops; the figures are the medians over the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

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
            # Event ids derive from the version: each run needs its own, or duplicate detection drops it.
            source_version=first_version + n,
            time=datetime.now(UTC),
            data={"Name": f"{run} {n}", "Symbol": "$"},
        )
        for n in range(count)
    ]


def _publish(settings: ServiceBusSettings, events: list[Envelope]) -> None:
    with bus_client(settings) as client, client.get_topic_sender(_TOPIC) as sender:
        for start in range(0, len(events), 100):
            sender.send_messages([to_message(e) for e in events[start : start + 100]])


async def _bare_loop(connection_string: str, count: int, concurrency: int) -> float:
    """Seconds a plain SDK loop takes to receive and complete ``count`` messages, sessions as the consumer."""
    done = 0
    started = time.perf_counter()

    async def worker(client: ServiceBusClient) -> None:
        nonlocal done
        while done < count and time.perf_counter() - started < _TIME_LIMIT_SECONDS:
            try:
                receiver = client.get_subscription_receiver(
                    _TOPIC, _SUBSCRIPTION.value, session_id=NEXT_AVAILABLE_SESSION, max_wait_time=0.5
                )
                async with receiver:
                    # The consumer's own session strategy: let the session go after a short batch.
                    batch = [None] * 50
                    while len(batch) == 50:
                        batch = await receiver.receive_messages(max_message_count=50, max_wait_time=0.3)
                        for message in batch:
                            await receiver.complete_message(message)
                            done += 1
            except Exception:  # noqa: BLE001, S112 - no free session within the wait: look again
                continue

    async with ServiceBusClient.from_connection_string(connection_string) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return time.perf_counter() - started


async def _consumer_run(settings: Settings, count: int, concurrency: int) -> tuple[float, ConsumerMetrics]:
    """Seconds the consumer takes to apply ``count`` changes, and its metrics."""
    stop = asyncio.Event()
    metrics = ConsumerMetrics(area="currency", direction=_SUBSCRIPTION.value)
    options = RuntimeOptions(concurrency=concurrency, session_wait=0.5, idle_wait=0.3)
    started = time.perf_counter()
    task = asyncio.create_task(
        run_consumer(settings, "currency", _SUBSCRIPTION, stop=stop, options=options, metrics=metrics)
    )
    while sum(metrics.counts[k] for k in ("applied", "skipped-stale")) < count and not task.done():
        if time.perf_counter() - started > _TIME_LIMIT_SECONDS:
            break
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed, metrics


@dataclass(frozen=True)
class _Round:
    bare_rate: float
    consumer_rate: float
    metrics: ConsumerMetrics

    @property
    def ratio(self) -> float:
        return self.consumer_rate / self.bare_rate


def _round(settings: Settings, connection_string: str, args: argparse.Namespace, index: int) -> _Round:
    """The bare loop, then the consumer, each over ``args.events`` fresh changes."""
    count = args.events
    bus = settings.servicebus
    # Versions grow from round to round so that no change is stale or a duplicate of an earlier one.
    _publish(bus, _events(count, "bare", 1 + 2 * index * count))
    bare_seconds = asyncio.run(_bare_loop(connection_string, count, args.concurrency))
    _publish(bus, _events(count, "consumer", 1 + (2 * index + 1) * count))
    consumer_seconds, metrics = asyncio.run(_consumer_run(settings, count, args.concurrency))
    return _Round(count / bare_seconds, count / consumer_seconds, metrics)


def main() -> None:
    """Run both loops on one emulator and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both loops; figures are medians")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    parent, child = multiprocessing.Pipe()
    twin = multiprocessing.Process(target=_serve_dataverse, args=(child,), daemon=True)
    twin.start()
    url, token_url, audience, ca_bundle = parent.recv()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "Config.json"
        config.write_bytes(orjson.dumps(render_emulator_config(default_topology())))
        with start_subprocess(config_file=config) as emulator:
            bus = ServiceBusSettings(connection_string=SecretStr(emulator.connection_string))
            dataverse = ApiSettings(
                url=url,
                client_id=_CLIENT_ID,
                client_secret=SecretStr(_SECRET),
                token_url=token_url,
                ca_bundle=Path(ca_bundle),
                audience=audience,
            )
            settings = Settings(servicebus=bus, dataverse=dataverse)
            rounds = [
                _round(settings, emulator.connection_string, args, index) for index in range(args.rounds)
            ]
    parent.send("stop")
    twin.join(timeout=10)
    rss_mb = psutil.Process().memory_info().rss / 2**20
    consumer_rate = statistics.median(r.consumer_rate for r in rounds)
    bare_rate = statistics.median(r.bare_rate for r in rounds)
    metrics = rounds[-1].metrics
    print(
        orjson.dumps(
            {
                "events": args.events,
                "concurrency": args.concurrency,
                "consumer_events_per_s": round(consumer_rate, 1),
                "bare_sdk_events_per_s": round(bare_rate, 1),
                # Each round runs the two loops back to back: the median of the rounds' own ratios is
                # steadier than a ratio of medians on a machine whose speed drifts.
                "ratio": round(statistics.median(r.ratio for r in rounds), 3),
                "ratio_target": 0.8,
                "round_ratios": [round(r.ratio, 3) for r in rounds],
                "consumer_rss_mb": round(rss_mb, 1),
                "rss_target_mb": 150,
                "consumer_outcomes": dict(metrics.counts),
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


if __name__ == "__main__":
    try:
        main()
    except TransientError as exc:
        raise SystemExit(f"benchmark aborted: {exc}") from exc
