"""Throughput of the Service Bus emulator with one sync SDK client, printed as JSON.

Runs the emulator as a child process with persistence on (a temporary data directory), so its CPU time
is measured apart from the client's: ``python bench/emulator.py [--messages 5000] [--body-bytes 1024]
[--rounds 3]`` (or ``python -m bench.emulator``). After one untimed warm-up round, every phase runs
``--rounds`` times; each figure is the median, and the rates of every round are printed too.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import psutil
from azure.servicebus import (
    ServiceBusClient,
    ServiceBusMessage,
    ServiceBusMessageBatch,
    ServiceBusReceiveMode,
    ServiceBusReceiver,
    ServiceBusSender,
)
from azure.servicebus.amqp import AmqpAnnotatedMessage

_HERE = pathlib.Path(__file__).resolve().parent
if sys.path and pathlib.Path(sys.path[0] or ".").resolve() == _HERE:
    # Run as a file, this directory leads sys.path and its sandbox.py would shadow the sandbox package.
    sys.path[0] = str(_HERE.parent)

from dualbus.sandbox.servicebus.launcher import EmulatorProcess, start_subprocess  # noqa: E402 - after the path fix

_CONFIG = {
    "UserConfig": {
        "Namespaces": [
            {
                "Name": "sbemulatorns",
                "Queues": [{"Name": "bench", "Properties": {"LockDuration": "PT1M", "MaxDeliveryCount": 10}}],
                "Topics": [],
            }
        ],
        "Logging": {"Type": "Console"},
    }
}


_Make = Callable[[bytes], ServiceBusMessage | AmqpAnnotatedMessage]


def _amqp_message(body: bytes) -> AmqpAnnotatedMessage:
    return AmqpAnnotatedMessage(data_body=body)


def _batches(
    sender: ServiceBusSender, count: int, body: bytes, make: _Make = ServiceBusMessage
) -> list[ServiceBusMessageBatch]:
    batches = []
    added = 0
    while added < count:
        batch = sender.create_message_batch()
        while added < count:
            try:
                batch.add_message(make(body))
            except ValueError:  # the batch is full
                break
            added += 1
        batches.append(batch)
    return batches


def _send(sender: ServiceBusSender, count: int, body: bytes, make: _Make = ServiceBusMessage) -> None:
    for batch in _batches(sender, count, body, make):
        sender.send_messages(batch)


def _send_prepared(sender: ServiceBusSender, batches: list[ServiceBusMessageBatch]) -> None:
    for batch in batches:
        sender.send_messages(batch)


def _receive(receiver: ServiceBusReceiver, count: int, *, complete: bool) -> None:
    received = 0
    while received < count:
        batch = receiver.receive_messages(max_message_count=100, max_wait_time=5)
        if not batch:
            raise RuntimeError(f"the queue ran dry after {received} of {count} messages")
        if complete:
            for message in batch:
                receiver.complete_message(message)
        received += len(batch)


def _timed(emulator: EmulatorProcess, count: int, run: Callable[[], None]) -> tuple[float, float]:
    """Messages per second and the emulator's CPU seconds per 1,000 messages for one phase.

    Links are opened before the clock starts: opening and closing cost the same at any volume.
    """
    process = psutil.Process(emulator.pid)
    cpu_before = sum(process.cpu_times()[:2])
    start = time.perf_counter()
    run()
    elapsed = time.perf_counter() - start
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    return count / elapsed, cpu / count * 1000


_RAD: dict[str, Any] = {"prefetch_count": 100, "receive_mode": ServiceBusReceiveMode.RECEIVE_AND_DELETE}


def _drain(client: ServiceBusClient, count: int) -> None:
    with client.get_queue_receiver("bench", **_RAD) as receiver:
        _receive(receiver, count, complete=False)


def _phases(client: ServiceBusClient, emulator: EmulatorProcess, count: int, body: bytes) -> dict[str, float]:
    with client.get_queue_sender("bench") as sender:
        send_rate, send_cpu = _timed(emulator, count, lambda: _send(sender, count, body))
        _drain(client, count)
        # ServiceBusMessage costs the SDK several times what AmqpAnnotatedMessage does to build and size.
        amqp_rate, _ = _timed(emulator, count, lambda: _send(sender, count, body, _amqp_message))
        _drain(client, count)
        # The wire alone: batches built before the clock starts.
        build_start = time.perf_counter()
        prepared = _batches(sender, count, body)
        build_us = (time.perf_counter() - build_start) / count * 1e6
        wire_rate, _ = _timed(emulator, count, lambda: _send_prepared(sender, prepared))
        with client.get_queue_receiver("bench", prefetch_count=100) as receiver:
            lock_rate, lock_cpu = _timed(emulator, count, lambda: _receive(receiver, count, complete=True))
        _send(sender, count, body)
    with client.get_queue_receiver("bench", **_RAD) as receiver:
        rad_rate, rad_cpu = _timed(emulator, count, lambda: _receive(receiver, count, complete=False))
    return {
        "send_rate": send_rate,
        "amqp_rate": amqp_rate,
        "build_us": build_us,
        "wire_rate": wire_rate,
        "send_cpu": send_cpu,
        "lock_rate": lock_rate,
        "lock_cpu": lock_cpu,
        "rad_rate": rad_rate,
        "rad_cpu": rad_cpu,
    }


def _figures(rounds: list[dict[str, float]]) -> dict[str, object]:
    """The median of every figure over the rounds, and each round's rates to show the spread."""

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    def each(key: str) -> list[int]:
        return [round(r[key]) for r in rounds]

    return {
        "batched_send_msg_per_s": round(median("send_rate")),
        "batched_send_amqp_message_msg_per_s": round(median("amqp_rate")),
        "batched_send_prebuilt_msg_per_s": round(median("wire_rate")),
        "sdk_build_us_per_msg": round(median("build_us"), 1),
        "peek_lock_receive_complete_msg_per_s": round(median("lock_rate")),
        "receive_and_delete_msg_per_s": round(median("rad_rate")),
        "emulator_cpu_s_per_1000_msg": {
            "send": round(median("send_cpu"), 4),
            "peek_lock_receive_complete": round(median("lock_cpu"), 4),
            "receive_and_delete": round(median("rad_cpu"), 4),
        },
        "rounds": {
            "batched_send_msg_per_s": each("send_rate"),
            "batched_send_amqp_message_msg_per_s": each("amqp_rate"),
            "batched_send_prebuilt_msg_per_s": each("wire_rate"),
            "peek_lock_receive_complete_msg_per_s": each("lock_rate"),
            "receive_and_delete_msg_per_s": each("rad_rate"),
        },
    }


def main() -> None:
    """Run a warm-up round, then the timed rounds, and print the median figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--body-bytes", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; figures are their median")
    args = parser.parse_args()
    count, body = args.messages, b"x" * args.body_bytes
    with tempfile.TemporaryDirectory() as tmp:
        config = pathlib.Path(tmp) / "Config.json"
        config.write_text(json.dumps(_CONFIG))
        with (
            start_subprocess(config_file=config, data_dir=pathlib.Path(tmp) / "data") as emulator,
            ServiceBusClient.from_connection_string(emulator.connection_string) as client,
        ):
            # The first messages pay for the SDK's lazy imports and first allocations on both sides.
            _phases(client, emulator, min(count, 1000), body)
            rounds = [_phases(client, emulator, count, body) for _ in range(args.rounds)]
    figures = {"messages": count, "body_bytes": args.body_bytes, "persistence": True, **_figures(rounds)}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
