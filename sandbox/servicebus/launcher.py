"""Start an emulator for tests and demos: in this process on a background thread, or as a child process.

Both handles give ``connection_string``, ``host``, ``port`` and ``stop()``, and work as context managers.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import IO

from pydantic import SecretStr

from dualbus.sandbox.handles import StopOnExit
from dualbus.sandbox.identity import TokenIssuer
from dualbus.sandbox.servicebus.config import EmulatorConfig
from dualbus.sandbox.servicebus.errors import EmulatorStartError
from dualbus.sandbox.servicebus.server import EmulatorServer

__all__ = ["EmulatorProcess", "EmulatorThread", "start_in_process", "start_subprocess"]

_READY_PREFIX = "Endpoint="


class _Handle(StopOnExit):
    """A running emulator: where it listens and the connection string to reach it."""

    host: str
    port: int
    connection_string: str


class EmulatorThread(_Handle):
    """An emulator serving from a daemon thread of this process."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.host = server.host
        self.port = server.port
        self.connection_string = server.connection_string
        self._thread = threading.Thread(target=server.serve_forever, name="servicebus-emulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, commit, close the data store and join the thread."""
        self.server.stop()
        self._thread.join(timeout=10)


class EmulatorProcess(_Handle):
    """An emulator running as ``python -m dualbus.sandbox.servicebus`` in a child process."""

    def __init__(self, process: subprocess.Popen[str], connection_string: str) -> None:
        self.process = process
        self.pid = process.pid
        self.connection_string = connection_string
        endpoint = connection_string.split(";", 1)[0].removeprefix("Endpoint=sb://")
        host, _, port = endpoint.rpartition(":")
        self.host, self.port = host, int(port)

    def stop(self) -> None:
        """SIGTERM, then wait for a clean exit (kill after 10 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _close(self.process.stdout)

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing gets to clean up."""
        self.process.kill()
        self.process.wait()
        _close(self.process.stdout)


def start_in_process(
    *,
    config: EmulatorConfig | None = None,
    data_dir: pathlib.Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    keys: Mapping[str, SecretStr] | None = None,
    key_rights: Mapping[str, Collection[str]] | None = None,
    max_message_bytes: int = 256 * 1024,
    clock: Callable[[], float] = time.time,
    entra: TokenIssuer | None = None,
    amqps_port: int | None = None,
) -> EmulatorThread:
    """Start an emulator on a background thread; without ``data_dir`` nothing is persisted.

    ``clock`` is the broker's time in seconds (see :class:`EmulatorServer`).
    ``entra``: the token issuer whose JWTs the emulator takes as Microsoft Entra ID tokens.
    ``amqps_port``: a second port, for clients that speak AMQP over TLS only to 5671 (the Python SDK).
    ``key_rights``: the rights (Send, Listen, Manage) of the keys named, the rest holding all three.
    """
    server = EmulatorServer(
        config=config,
        host=host,
        port=port,
        data_dir=data_dir,
        keys=keys,
        key_rights=key_rights,
        max_message_bytes=max_message_bytes,
        clock=clock,
        entra=entra,
        amqps_port=amqps_port,
    )
    return EmulatorThread(server)


def start_subprocess(
    *,
    config_file: pathlib.Path | None = None,
    data_dir: pathlib.Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> EmulatorProcess:
    """Start ``python -m dualbus.sandbox.servicebus`` and wait until it prints its connection string."""
    command = [sys.executable, "-m", "dualbus.sandbox.servicebus", "--host", host, "--port", str(port)]
    if config_file is not None:
        command += ["--config", str(config_file)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    child_env = {**os.environ, **(env or {})}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        command, stdout=subprocess.PIPE, text=True, env=child_env
    )
    line = _ready_line(process, timeout)
    return EmulatorProcess(process, line)


def _ready_line(process: subprocess.Popen[str], timeout: float) -> str:
    result: list[str] = []

    def read() -> None:
        assert process.stdout is not None  # noqa: S101 - Popen was given stdout=PIPE
        for line in process.stdout:
            if line.startswith(_READY_PREFIX):
                result.append(line.strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while reader.is_alive() and time.monotonic() < deadline:
        reader.join(0.05)
    if not result:
        process.kill()
        process.wait()
        raise EmulatorStartError(
            f"the emulator did not start within {timeout} s (exit code {process.returncode})"
        )
    return result[0]


def _close(stream: IO[str] | None) -> None:
    if stream is not None:
        stream.close()
