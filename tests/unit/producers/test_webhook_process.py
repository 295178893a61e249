"""The webhook served by a process of its own: it keeps events in the producer's inbox and wakes its
publishing, answers while the producer's loop is blocked, ignores the signals meant for the producer, and
ends when the producer says stop or is gone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from dualbus.demo.processes import free_port
from dualbus.producers.errors import SourceError
from dualbus.producers.fo_webhook_process import _child_main, _WebhookSpec, serve_webhook_process
from dualbus.producers.settings import ProducerOptions
from dualbus.shared.errors import ConfigError
from tests.unit.producers.webhook_parts import EVENT, KEY, WITHIN, customers, publishing, until, webhook_parts

# Spawning the child imports uvicorn and dualbus afresh: seconds on a busy machine.
_STARTS_WITHIN = 60.0


@pytest.fixture
def parts(tmp_path: Path):
    with webhook_parts(tmp_path) as made:
        yield made


def _post_until_answered(url: str) -> tuple[int, float]:
    """POST the event (retrying while the child starts); its status and when the answer came."""
    deadline = time.monotonic() + _STARTS_WITHIN
    while True:
        try:
            answer = httpx.post(url, content=EVENT, params={"code": KEY}, timeout=WITHIN)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        return answer.status_code, time.monotonic()


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _options(port: int) -> ProducerOptions:
    return ProducerOptions(webhook_port=port, fo_webhook_key=SecretStr(KEY))


@pytest.mark.asyncio
async def test_the_webhook_process_keeps_events_and_answers_while_the_producers_loop_is_blocked(
    parts,
) -> None:
    """An event the child keeps wakes the inbox on the producer's loop and is published; another is kept
    and answered while that loop is blocked (a sleep standing in for a long publish), and published once
    it is free. Stopped, the child lets the port go."""
    client, _, inbox, store = parts
    port = free_port()
    stop = asyncio.Event()
    webhook = serve_webhook_process(inbox, _options(port), stop, log_level="INFO", log_json=True)
    serving = asyncio.create_task(webhook)
    url = f"http://127.0.0.1:{port}/fo/events"
    try:
        async with publishing(inbox):
            status, _ = await asyncio.to_thread(_post_until_answered, url)
            assert status == 200
            await until(lambda: customers(client) == ["C-1"])  # woken by the child's word
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                posting = pool.submit(_post_until_answered, url)
                time.sleep(1.0)  # noqa: ASYNC251 - the point: the producer's loop can do nothing meanwhile
                block_ended = time.monotonic()
                status, answered = posting.result(timeout=WITHIN)
            assert status == 200
            assert answered < block_ended
            await until(lambda: store.inbox(10) == [])  # and published once the loop is free again
    finally:
        stop.set()
        await asyncio.wait_for(serving, WITHIN * 3)
    assert _port_is_free(port)


@pytest.mark.asyncio
async def test_a_webhook_port_that_is_taken_is_a_one_line_error(parts) -> None:
    _, _, inbox, _ = parts
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        options = ProducerOptions(webhook_port=taken.getsockname()[1])
        serving = serve_webhook_process(inbox, options, asyncio.Event(), log_level="INFO", log_json=True)
        with pytest.raises(ConfigError, match=r"could not be served on 127\.0\.0\.1:\d+ \(is the port taken"):
            await asyncio.wait_for(serving, _STARTS_WITHIN)


class _UnopenableInbox:
    """An inbox whose file the child cannot open (its folder is a file): the child ends before it listens."""

    entities = ("CustomersV3",)

    def __init__(self, tmp_path: Path) -> None:
        (tmp_path / "not-a-folder").write_text("")
        self.store_path = tmp_path / "not-a-folder" / "producer-fo.sqlite3"

    def arrived(self) -> None:
        raise AssertionError("no event can be kept")


@pytest.mark.asyncio
async def test_a_child_that_ends_before_it_listens_is_a_source_error_not_a_taken_port(tmp_path: Path) -> None:
    inbox = _UnopenableInbox(tmp_path)
    serving = serve_webhook_process(
        inbox,  # type: ignore[arg-type]  # what the webhook process uses of the inbox
        _options(free_port()),
        asyncio.Event(),
        log_level="INFO",
        log_json=True,
    )
    with pytest.raises(SourceError, match="ended before it listened"):
        await asyncio.wait_for(serving, _STARTS_WITHIN)


def _spawned_child(tmp_path: Path, port: int) -> tuple[multiprocessing.process.BaseProcess, object]:
    spec = _WebhookSpec(
        host="127.0.0.1",
        port=port,
        path="/fo/events",
        key=SecretStr(KEY),
        store_path=tmp_path / "producer-fo.sqlite3",
        entities=("CustomersV3",),
        log_level="INFO",
        log_json=True,
    )
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    child = context.Process(target=_child_main, args=(spec, theirs), daemon=True)
    child.start()
    theirs.close()
    assert ours.poll(_STARTS_WITHIN)
    assert ours.recv_bytes() == b"started"
    return child, ours


def test_the_child_ignores_the_producers_signals_and_ends_when_the_producer_is_gone(tmp_path: Path) -> None:
    """Ctrl+C and SIGTERM sent to the whole group leave the webhook to the producer; when the producer's
    end of the pipe closes (the producer killed), the child ends and lets the port go."""
    port = free_port()
    child, ours = _spawned_child(tmp_path, port)
    try:
        assert child.pid is not None
        for signum in (signal.SIGINT, signal.SIGTERM):
            os.kill(child.pid, signum)
        status, _ = _post_until_answered(f"http://127.0.0.1:{port}/fo/events")
        assert status == 200
        assert child.is_alive()
        ours.close()  # type: ignore[attr-defined]  # what the kernel does for a producer killed with -9
        child.join(WITHIN * 2)
        assert not child.is_alive()
        assert _port_is_free(port)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
