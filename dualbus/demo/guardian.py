"""Stops the demo's children when the demo dies without stopping them (SIGKILL, a crash, an OOM kill).

Each child runs in a session of its own (``processes.ProcessGroup``), so that a Ctrl-C reaches only the demo,
which then stops them in order. The other side of that: a demo killed outright left the emulator, the twins,
the producers and the consumers running, holding their ports, with nobody to stop them.

The guardian is one small process per demo, in a session of its own too, reading its standard input: the
demo writes ``+<pgid>`` for each child it starts, ``-<pgid>`` for each whose group is gone (so that a number
the kernel hands out again is never signalled), and ``done`` once it has stopped them all. End of input
without ``done`` means the demo is gone (the kernel closes a dead process's pipes, however it died): the
guardian stops the groups it was told of, SIGTERM first, SIGKILL after a grace.
No polling while the demo lives: the guardian blocks on the pipe.

``ProcessGroup`` runs this file by its path (``python -I guardian.py``): it needs the standard library only,
and importing the package would load the whole demo. What it did goes to its standard error, the run's
``guardian.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DONE", "Guardian", "group_alive", "guard", "main"]

DONE = "done"
_GRACE_SECONDS = 10.0
_LOOK_SECONDS = 0.1
# The guardian exits as soon as it reads that all is done.
_EXIT_SECONDS = 5.0

_log = logging.getLogger("dualbus.demo")


class Guardian:
    """The demo's side: starts the guardian process and tells it of the groups to stop should the demo die.

    Without it (it could not start, or it died) the demo goes on, only without that protection.
    """

    def __init__(self, log_path: Path) -> None:
        """The guardian's own account of what it did goes to ``log_path``."""
        self._process: subprocess.Popen[bytes] | None = None
        try:
            with log_path.open("ab") as log:
                self._process = subprocess.Popen(  # noqa: S603 - this interpreter and this file, no shell
                    [sys.executable, "-I", str(Path(__file__).resolve())],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,  # a Ctrl-C in the terminal is the demo's to handle, not its
                )
        except OSError as exc:
            _log.warning("no guardian for the demo's processes (a killed demo would leave them): %s", exc)

    def guard(self, group: int) -> None:
        """Stop ``group`` should the demo die."""
        self._tell(f"+{group}")

    def forget(self, group: int) -> None:
        """``group`` is gone: its number may be given to another group, which must never be signalled."""
        self._tell(f"-{group}")

    def release(self) -> None:
        """Every child is stopped: the guardian has nothing left to do, and exits."""
        process, self._process = self._process, None
        if process is None or process.stdin is None:
            return
        try:
            process.stdin.write(f"{DONE}\n".encode())
        except OSError:
            pass  # gone already: nothing left to tell it
        finally:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()  # it has nothing to do any more
            process.wait()

    def _tell(self, line: str) -> None:
        if self._process is None or self._process.stdin is None:
            return
        try:
            self._process.stdin.write(f"{line}\n".encode())
            self._process.stdin.flush()
        except OSError as exc:
            _log.warning("the demo's guardian is gone (a killed demo would leave its processes): %s", exc)
            self._process = None


def guard(lines: Iterable[str], *, grace: float = _GRACE_SECONDS) -> set[int]:
    """Follow the demo's lines; when they end without ``done``, stop the groups left. Returns those groups."""
    groups: set[int] = set()
    for line in lines:
        word = line.strip()
        if word == DONE:
            sys.stderr.write("the demo stopped its children itself; nothing to do\n")
            return set()
        if word[:1] in {"+", "-"} and word[1:].isdigit() and int(word[1:]) > 1:
            (groups.add if word[0] == "+" else groups.discard)(int(word[1:]))
    _stop(groups, grace)
    return groups


def _stop(groups: set[int], grace: float) -> None:
    sys.stderr.write(f"the demo is gone: stopping process groups {sorted(groups)}\n")
    for group in groups:
        _signal(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(group_alive(group) for group in groups) and time.monotonic() < deadline:
        time.sleep(_LOOK_SECONDS)
    for group in groups:
        if group_alive(group):
            _signal(group, signal.SIGKILL)


def _signal(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already, or no longer ours
        os.killpg(group, signum)


def group_alive(group: int) -> bool:
    """Whether the process group still has a member of ours (a leader not yet reaped counts)."""
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def main() -> None:
    """Guard the groups named on standard input (see the module's docstring)."""
    # The guardian must outlive the demo's terminal: a Ctrl-C or a hang-up there is the demo's to handle.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    guard(sys.stdin)


if __name__ == "__main__":
    main()
