"""The loop writes only connections that may have output, and ticks transports when due or touched.

Also, against a running emulator, a raw proton client asking for keep-alives (an idle timeout, as the
JavaScript SDK's rhea sets by default) gets them while it says nothing, so the emulator's ticks still come.
"""

from __future__ import annotations

import socket
import time

from proton import Connection, Transport

from dualbus.sandbox.servicebus.activity import Activity
from dualbus.sandbox.servicebus.launcher import start_in_process


def test_only_touched_or_announced_connections_are_written() -> None:
    """A new connection is written once; afterwards only one read from or announced by proton."""
    activity: Activity[str] = Activity()
    for name in ("a", "b", "c"):
        activity.joined(name)
    assert sorted(activity.take_output()) == ["a", "b", "c"]
    assert activity.take_output() == []
    activity.active("a")
    activity.announced("c")
    assert sorted(activity.take_output()) == ["a", "c"]
    activity.left("a")
    activity.active("a")  # a late read of a connection gone: nothing to write
    assert activity.take_output() == []


def test_transports_are_ticked_when_touched_or_due_and_the_earliest_deadline_is_answered() -> None:
    """A deadline is asked again only of transports with I/O since, or whose deadline has come; a ticked
    transport is written when its tick left a frame to send."""
    activity: Activity[str] = Activity()
    deadlines = {"a": 10.0, "b": 0.0}
    keep_alive = {"a": 0, "b": 0}
    ticked: list[str] = []

    def tick(client: str, _now: float) -> float:
        ticked.append(client)
        return deadlines[client]

    def pending(client: str) -> int:
        return keep_alive[client]

    activity.joined("a")
    activity.joined("b")
    activity.take_output()
    assert activity.tick(1.0, tick, pending) == 10.0
    assert sorted(ticked) == ["a", "b"]
    assert activity.take_output() == []  # nothing to send
    ticked.clear()
    assert activity.tick(2.0, tick, pending) == 10.0
    assert ticked == []  # nothing touched, nothing due
    activity.written("b")  # bytes went out: its keep-alive deadline moved
    deadlines["b"] = 5.0
    assert activity.tick(3.0, tick, pending) == 5.0
    assert ticked == ["b"]
    ticked.clear()
    deadlines["b"] = 0.0
    keep_alive["b"] = 8
    assert activity.tick(5.5, tick, pending) == 10.0
    assert ticked == ["b"]  # due
    assert activity.take_output() == ["b"]  # its keep-alive goes out in this pass


def test_an_idle_client_asking_for_keep_alives_gets_them() -> None:
    """A proton client with a 0.4 s idle timeout, silent for 2 s, keeps receiving frames from the emulator."""
    with start_in_process() as emulator:
        sock = socket.create_connection((emulator.host, emulator.port), timeout=5)
        sock.settimeout(0.05)
        transport = Transport(Transport.CLIENT)
        transport.idle_timeout = 0.4  # the peer must send something at least every 0.2 s
        transport.sasl().allowed_mechs("ANONYMOUS")
        connection = Connection()
        connection.hostname = "localhost"
        transport.bind(connection)
        connection.open()
        arrivals: list[float] = []
        started = time.monotonic()
        try:
            while time.monotonic() - started < 2.5:
                transport.tick(time.time())
                while (pending := transport.pending()) > 0:
                    sent = sock.send(transport.peek(pending))
                    transport.pop(sent)
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                assert data, "the emulator closed the connection"
                arrivals.append(time.monotonic() - started)
                transport.push(data)
        finally:
            sock.close()
    assert connection.state & Connection.REMOTE_ACTIVE
    late = [at for at in arrivals if at > 0.5]
    assert len(late) >= 5  # about one keep-alive per 0.2 s after the open
