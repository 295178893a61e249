"""Stops the demo's children when the demo dies without stopping them (SIGKILL, a crash, an OOM kill).

Each child runs in a session of its own (``processes.ProcessGroup``), so that a Ctrl-C reaches only the demo,
which then stops them in order. The other side of that: a demo killed outright left the emulator, the twins,
the producers and the consumers running, holding their ports, with nobody to stop them.

The guardian is one small process per demo, in a session of its own too, reading its standard input: the
demo writes ``+<pgid>`` for each child it starts, ``-<pgid>`` for each it forgets, and ``done`` once it has
stopped them all. End of input without ``done`` means the demo is gone (the kernel closes a dead process's
pipes, however it died): the guardian stops the groups it was told of, SIGTERM first, SIGKILL after a grace.
No polling while the demo lives: the guardian blocks on the pipe.

Run by ``ProcessGroup`` as ``python -m dualbus.demo.guardian``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable

__all__ = ["DONE", "guard", "main"]

DONE = "done"
_GRACE_SECONDS = 10.0
_LOOK_SECONDS = 0.1


def guard(lines: Iterable[str], *, grace: float = _GRACE_SECONDS) -> set[int]:
    """Follow the demo's lines; when they end without ``done``, stop the groups left. Returns those groups."""
    groups: set[int] = set()
    for line in lines:
        word = line.strip()
        if word == DONE:
            return set()
        if word[:1] in {"+", "-"} and word[1:].isdigit():
            (groups.add if word[0] == "+" else groups.discard)(int(word[1:]))
    _stop(groups, grace)
    return groups


def _stop(groups: set[int], grace: float) -> None:
    for group in groups:
        _signal(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(group) for group in groups) and time.monotonic() < deadline:
        time.sleep(_LOOK_SECONDS)
    for group in groups:
        if _alive(group):
            _signal(group, signal.SIGKILL)


def _signal(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already, or no longer ours
        os.killpg(group, signum)


def _alive(group: int) -> bool:
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
