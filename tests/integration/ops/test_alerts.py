"""An alert rule fires on a burst of dead-letters of one reason, calls its webhook and pauses the route."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from azure.servicebus import ServiceBusClient

from dualbus.ops.alert_monitor import AlertMonitor
from dualbus.ops.alerts import Action, AlertRule, AlertRules
from dualbus.ops.audit import AuditLog
from dualbus.ops.dlq import Route
from dualbus.shared.control import read_states
from dualbus.shared.topology import default_topology
from tests.integration.ops.test_dlq import ROUTE, _publish_and_dead_letter

pytestmark = pytest.mark.integration


class _Hook(BaseHTTPRequestHandler):
    """Records the alert bodies POSTed to it."""

    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Hook.received.append(orjson.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the standard library's name
        """Quiet."""


def test_alert_fires_calls_the_webhook_and_pauses(bus: ServiceBusClient, tmp_path: Path) -> None:
    """Three lookups dead-lettered fire the rule once: one webhook call, and customer/to-dataverse paused."""
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    try:
        rule = AlertRule(
            name="lookup-storm",
            threshold=3,
            window_minutes=5,
            reason="UnresolvedLookup",
            actions=(Action.LOG, Action.WEBHOOK, Action.PAUSE),
            webhook_url=f"http://127.0.0.1:{server.server_port}/alerts",
        )
        topology = default_topology()
        monitor = AlertMonitor(
            bus,
            AlertRules(rules=(rule,)),
            [ROUTE, Route(area="vendor", topic="dualbus.vendor", subscription="to-fo")],
            control_queue=topology.control_queue,
            audit=AuditLog(tmp_path / "audit.jsonl"),
        )
        assert monitor.poll() == []
        _publish_and_dead_letter(bus, {"C-1": "UnresolvedLookup", "C-2": "UnresolvedLookup"})
        assert monitor.poll() == []
        _publish_and_dead_letter(bus, {"C-3": "UnresolvedLookup", "C-4": "TargetRejected"})
        (firing,) = monitor.poll()
        assert firing.count == 3
        assert monitor.poll() == []  # quiet for the rest of the window
        assert [body["rule"] for body in _Hook.received] == ["lookup-storm"]
        assert _Hook.received[0]["routes"] == ["customer/to-dataverse"]
        states = read_states(bus, topology.control_queue)
        assert states["customer/to-dataverse"].paused
        assert "vendor/to-fo" not in states
        assert monitor.actions.errors == []
        monitor.close()
    finally:
        server.shutdown()
        server.server_close()


def test_dead_letters_from_before_the_start_never_count(bus: ServiceBusClient, tmp_path: Path) -> None:
    """Letters already there are the baseline: the first poll fires nothing, only new arrivals count."""
    _publish_and_dead_letter(bus, {"C-10": "UnresolvedLookup", "C-11": "UnresolvedLookup"})
    rule = AlertRule(
        name="any-lookup", threshold=1, window_minutes=5, reason="UnresolvedLookup", actions=(Action.PAUSE,)
    )
    topology = default_topology()
    monitor = AlertMonitor(
        bus,
        AlertRules(rules=(rule,)),
        [ROUTE],
        control_queue=topology.control_queue,
        audit=AuditLog(tmp_path / "audit.jsonl"),
    )
    try:
        assert monitor.poll() == []  # two old letters, threshold 1: still nothing on the first poll
        assert monitor.poll() == []  # nor later: they are not new
        assert "customer/to-dataverse" not in read_states(bus, topology.control_queue)
        _publish_and_dead_letter(bus, {"C-12": "UnresolvedLookup"})
        (firing,) = monitor.poll()
        assert firing.count == 1
    finally:
        monitor.close()
