"""The F&O data event webhook, served by a process of its own that keeps events in the producer's inbox.

F&O's processing threads (four at most) each wait for the webhook's answer before they send the next event,
so every millisecond the webhook spends answering limits how many events a second reach the producer. The
answer only needs the event kept (``fo_inbox.keep_event``: one SQLite transaction), but served on a thread
of the producer's process, the webhook shared the interpreter lock with the producer's reads and publishes:
each of its socket calls handed the lock over and waited up to a switch interval (5 ms) to get it back. In
one run at 200 changes/s on two cores, sampled, 41 % of the webhook thread's busy time went to that wait.
The F&O producer leg's p99 (``bench/live.py --rates 200``) was 0.34, 0.95, 0.99 and 4.72 s in four runs
with the webhook on a thread, and 0.25, 0.29, 0.38, 0.43, 1.17 and 1.49 s in six with it in a process of
its own. In the child, keeping an event took 0.2 ms at the median and 9 ms at p99 (another process's
write holding the file); what is left of the leg's tail waits at the F&O twin's side (docs/operations.md).

The child opens the same inbox (SQLite in WAL mode takes writers from several processes, each in its own
transaction) and tells the producer of every event it kept over a pipe, which wakes the inbox's publishing.
It stops when the producer asks, or when the producer is gone (the pipe closes: a producer killed with -9
leaves no webhook behind, holding the port its restart needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.errors import SourceError
from dualbus.producers.fo_events import FoDataEvent
from dualbus.producers.fo_inbox import FoEventInbox, keep_event
from dualbus.producers.fo_webhook import webhook_app
from dualbus.producers.settings import ProducerOptions
from dualbus.shared.errors import ConfigError
from dualbus.shared.listening import tcp_listener
from dualbus.shared.logs import register_secret, setup_logging

__all__ = ["serve_webhook_process"]

_log = logging.getLogger(__name__)
_STARTED, _STOP, _KEPT = b"started", b"stop", b"+"
_FAILED = b"failed "
_ENDED = b""  # not said by the child: put in its words when its process ends
# Spawning an interpreter that imports uvicorn, starlette and dualbus: a few seconds on a busy machine.
_START_SECONDS = 60.0
# A caller that never finishes its request must not hold the producer's shutdown for ever.
_SHUTDOWN_SECONDS = 5
# How often the child looks whether its server thread ended by itself, between the producer's words.
_LOOK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class _WebhookSpec:
    """What the child needs: where to listen, the inbox's file, the key, and how to log."""

    host: str
    port: int
    path: str
    key: SecretStr | None
    store_path: Path
    entities: tuple[str, ...]
    log_level: str
    log_json: bool


async def serve_webhook_process(
    inbox: FoEventInbox, options: ProducerOptions, stop: asyncio.Event, *, log_level: str, log_json: bool
) -> None:
    """Serve the webhook from a child process until ``stop``; ConfigError when it cannot listen.

    Raises SourceError when the child ends by itself (the producer then stops, as for any failed task).
    """
    spec = _WebhookSpec(
        host=options.webhook_host,
        port=options.webhook_port,
        path=options.webhook_path,
        key=options.fo_webhook_key,
        store_path=inbox.store_path,
        entities=inbox.entities,
        log_level=log_level,
        log_json=log_json,
    )
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_child_main, args=(spec, theirs), name="dualbus-fo-webhook", daemon=True)
    process.start()
    theirs.close()
    loop = asyncio.get_running_loop()
    words: asyncio.Queue[bytes] = asyncio.Queue()
    ended = loop.create_future()
    loop.add_reader(ours.fileno(), _read_words, loop, ours, words, inbox)
    loop.add_reader(process.sentinel, _ended, loop, process.sentinel, ended, words)
    try:
        await _started(spec, words)
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopping, ended], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not stop.is_set():
            raise SourceError(f"the F&O data event webhook stopped by itself (exit code {process.exitcode})")
    finally:
        loop.remove_reader(ours.fileno())
        loop.remove_reader(process.sentinel)
        with contextlib.suppress(OSError):
            ours.send_bytes(_STOP)
        await asyncio.to_thread(_end, process)
        ours.close()


async def _started(spec: _WebhookSpec, words: asyncio.Queue[bytes]) -> None:
    """Wait for the child's first word: it listens, or why it cannot (or it ended without a word)."""
    try:
        word = await asyncio.wait_for(words.get(), _START_SECONDS)
    except TimeoutError:
        raise SourceError(f"the F&O data event webhook did not start within {_START_SECONDS:.0f} s") from None
    if word == _STARTED:
        return
    if not word.startswith(_FAILED):
        # Ended before it could listen or say why (an interpreter that failed to start): its log says.
        raise SourceError("the F&O data event webhook's process ended before it listened; see its log")
    why = word[len(_FAILED) :].decode(errors="replace")
    raise ConfigError(
        f"the F&O data event webhook could not be served on {spec.host}:{spec.port} (is the port taken, or "
        f"the address not this machine's? DUALBUS_PRODUCER__WEBHOOK_HOST and __WEBHOOK_PORT set them): {why}"
    )


def _read_words(
    loop: asyncio.AbstractEventLoop, conn: Connection, words: asyncio.Queue[bytes], inbox: FoEventInbox
) -> None:
    """Everything the child said since the last look: a kept event wakes the inbox once for all."""
    kept = False
    try:
        while conn.poll():
            word = conn.recv_bytes()
            if word == _KEPT:
                kept = True
            else:
                words.put_nowait(word)
    except (EOFError, OSError):
        # The child is gone (its sentinel says so too): a closed pipe would be readable for ever.
        loop.remove_reader(conn.fileno())
    if kept:
        inbox.arrived()


def _ended(
    loop: asyncio.AbstractEventLoop, sentinel: int, future: asyncio.Future[None], words: asyncio.Queue[bytes]
) -> None:
    loop.remove_reader(sentinel)  # readable for ever once the process ended
    if not future.done():
        future.set_result(None)
        words.put_nowait(_ENDED)


def _end(process: multiprocessing.process.BaseProcess) -> None:
    process.join(_SHUTDOWN_SECONDS + 1)
    if process.is_alive():
        _log.warning("the F&O data event webhook did not stop in time; killing it")
        process.kill()
        process.join()


class _Keeper:
    """The child's side of the inbox: keeps each event and tells the producer."""

    def __init__(self, store: CheckpointStore, conn: Connection, entities: tuple[str, ...]) -> None:
        self._store = store
        self._conn = conn
        # The server's thread tells of events, the child's main thread that it started: one frame at a time.
        self._telling = threading.Lock()
        self.entities = entities

    def take(self, body: bytes) -> FoDataEvent:
        """Keep one event (``keep_event``) and tell the producer."""
        event = keep_event(self._store, body)
        self.tell(_KEPT)
        return event

    def tell(self, word: bytes) -> None:
        """Say ``word`` to the producer; one that is gone hears nothing (kept events wait for its restart)."""
        with self._telling, contextlib.suppress(OSError):
            self._conn.send_bytes(word)


def _child_main(spec: _WebhookSpec, conn: Connection) -> None:
    """The child process: serve until the producer says stop, or is gone."""
    # Ctrl+C and SIGTERM reach the whole process group: the producer decides when its webhook stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup_logging(spec.log_level, json=spec.log_json)
    register_secret(spec.key)
    try:
        sock = tcp_listener(spec.host, spec.port)
    except OSError as exc:
        conn.send_bytes(_FAILED + str(exc).encode())
        return
    store = CheckpointStore(spec.store_path)
    keeper = _Keeper(store, conn, spec.entities)
    app = webhook_app(keeper, path=spec.path, key=spec.key)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=_SHUTDOWN_SECONDS
    )
    server = uvicorn.Server(config)
    # On a thread: uvicorn installs no signal handlers there, and this one listens to the producer.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="fo-webhook", daemon=True)
    thread.start()
    try:
        _serve_until_told(server, thread, conn, keeper)
    finally:
        server.should_exit = True
        thread.join(_SHUTDOWN_SECONDS + 1)
        store.close()


def _serve_until_told(
    server: uvicorn.Server, thread: threading.Thread, conn: Connection, keeper: _Keeper
) -> None:
    told_started = False
    while thread.is_alive():
        if server.started and not told_started:
            keeper.tell(_STARTED)
            told_started = True
        try:
            if conn.poll(_LOOK_SECONDS if told_started else 0.01) and conn.recv_bytes() == _STOP:
                return
        except (EOFError, OSError):
            return  # the producer is gone
