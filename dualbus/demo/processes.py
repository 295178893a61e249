"""Child processes of the demo: each in its own process group, logging to its own file, stopped cleanly.

A child runs in a new session (``start_new_session``), so a signal sent to its group reaches whatever it
spawned as well, and a Ctrl-C in the terminal reaches only the demo, which then stops the children in
order: SIGTERM to every group, a grace period, SIGKILL to what is left. Nothing is orphaned: should the
demo die without stopping them (SIGKILL), its guardian process stops them (``guardian``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from dualbus.demo.errors import DemoError
from dualbus.demo.guardian import Guardian, group_alive

__all__ = ["ChildProcess", "ProcessGroup", "free_port"]

_POLL_SECONDS = 0.05


def free_port() -> int:
    """A loopback port nobody listens on right now (for a child that cannot report the one it chose)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class ChildProcess:
    """One running child: its name, command, log file and Popen handle."""

    name: str
    command: Sequence[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    _log: IO[bytes] | None = field(default=None, repr=False)
    # Children of a later stage are stopped before those of an earlier one.
    stage: int = 0
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def pid(self) -> int:
        """The child's process id, which is also its process group id."""
        return self.process.pid

    def running(self) -> bool:
        """Whether the child has not exited yet."""
        return self.process.poll() is None

    def exited_since(self, _now: float, _stats: object) -> bool:
        """Whether the child has exited: a ``Monitor.wait`` condition."""
        return not self.running()

    def log_text(self) -> str:
        """Everything the child wrote so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the child's log matches ``pattern``; DemoError when it exits or time runs out first."""
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = compiled.search(self.log_text())
            if found:
                return found
            if not self.running():
                raise DemoError(
                    f"{self.name} exited with code {self.process.returncode}; see {self.log_path}"
                )
            time.sleep(_POLL_SECONDS)
        raise DemoError(f"{self.name} was not ready within {timeout:.0f} s; see {self.log_path}")

    def wait(self, timeout: float) -> int:
        """Wait for the child to exit and return its exit code; DemoError when it takes too long."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise DemoError(
                f"{self.name} did not finish within {timeout:.0f} s; see {self.log_path}"
            ) from exc

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the child's whole process group (it may be gone already)."""
        with contextlib.suppress(ProcessLookupError):  # the group is gone already: nothing to stop
            os.killpg(self.process.pid, signum)

    def close_log(self) -> None:
        """Close the parent's handle on the log file."""
        if self._log is not None:
            self._log.close()
            self._log = None


class ProcessGroup:
    """Every child the demo started; ``stop_all`` ends them all, gently first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[ChildProcess] = []
        log_dir.mkdir(parents=True, exist_ok=True)
        self._guardian: Guardian | None = None
        self._guarded: set[int] = set()  # groups the guardian would stop

    def start(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        stage: int = 0,
    ) -> ChildProcess:
        """Start ``command`` with exactly ``env``, in a new session, its output going to ``<name>.log``."""
        if self._guardian is None:  # before the first child, so that no child is ever unguarded
            self._guardian = Guardian(self.log_dir / "guardian.log")
        self._forget_gone()
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("wb")
        # A stop (SIGTERM, Ctrl-C) that came between the start and the registration would leave the child
        # unknown to stop_all and to the guardian, running on after the demo: it waits until both are done.
        with _interrupts_deferred():
            try:
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules, no shell
                    list(command),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(env),
                    start_new_session=True,
                )
            except OSError as exc:
                log.close()
                raise DemoError(f"cannot start {name}: {exc}") from exc
            child = ChildProcess(name, list(command), log_path, process, log, stage, dict(env))
            self.children.append(child)
            self._guardian.guard(process.pid)
            self._guarded.add(process.pid)
        return child

    def restart(self, child: ChildProcess, *, command: Sequence[str] | None = None) -> ChildProcess:
        """Start an exited ``child`` again (its command or ``command``, its environment); its log is kept.

        The earlier log becomes ``<name>.<n>.log`` (n = 1, 2, ...), so waiting for a line reads the new one.
        """
        if child.running():
            raise DemoError(f"{child.name} is still running")
        child.close_log()
        self.children.remove(child)
        earlier = sum(1 for _ in self.log_dir.glob(f"{child.name}.*.log"))
        child.log_path.rename(self.log_dir / f"{child.name}.{earlier + 1}.log")
        return self.start(child.name, command or child.command, child.env, stage=child.stage)

    def exited(self) -> list[ChildProcess]:
        """Children that have exited (whatever the reason)."""
        self._forget_gone()  # polls every child, so each one's exit code is known
        return [child for child in self.children if child.process.returncode is not None]

    def _forget_gone(self) -> None:
        """Tell the guardian of each group that is gone, leader and all (a restart's, an exited child's)."""
        for child in self.children:
            child.running()  # reaps a leader that exited, so that an empty group shows as gone
        if self._guardian is None:
            return
        for group in [g for g in self._guarded if not group_alive(g)]:
            self._guardian.forget(group)
            self._guarded.discard(group)

    def stop_all(self, grace: float = 10.0) -> dict[str, int | None]:
        """Stop the children stage by stage, latest stage first; returns every child's exit code.

        In each stage: SIGTERM to every group, then SIGKILL to what is left after ``grace`` seconds. Clients
        go before the services they use, so that they can close their connections cleanly.
        """
        for stage in sorted({child.stage for child in self.children}, reverse=True):
            _stop([child for child in self.children if child.stage == stage], grace)
        for child in self.children:
            child.close_log()
        if self._guardian is not None:
            self._guardian.release()
            self._guardian = None
        return {child.name: child.process.returncode for child in self.children}


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """SIGTERM and SIGINT that arrive in the block are handled as it ends, by the handlers set before it
    (the demo's raise KeyboardInterrupt). Only the main thread takes signals; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    signums = (signal.SIGTERM, signal.SIGINT)
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: caught.append(signum)) for signum in signums
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])  # now handled as it would have been


def _stop(children: list[ChildProcess], grace: float) -> None:
    for child in children:
        if child.running():
            child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(child.running() for child in children) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    for child in children:
        if child.running():
            child.signal_group(signal.SIGKILL)
            child.process.wait()
