"""`dualbus status` reads runtime counts from the emulator's administration API and dead-letter ages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from azure.servicebus import ServiceBusClient
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.sandbox.servicebus.launcher import EmulatorThread
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.messages import to_message

pytestmark = pytest.mark.integration


def _send(bus: ServiceBusClient, count: int) -> list[str]:
    sessions = []
    with bus.get_topic_sender("dualbus.vendor") as sender:
        for n in range(count):
            message = to_message(
                Envelope.for_change(
                    origin=Origin.DATAVERSE,
                    area="vendor",
                    entity="msdyn_vendors",
                    key={"msdyn_vendoraccountnumber": f"V-{n}"},
                    operation=Operation.CREATE,
                    source_version=1,
                    time=datetime.now(UTC),
                )
            )
            sessions.append(str(message.session_id))
            sender.send_messages(message)
    return sessions


def test_status_counts_active_and_dead_lettered(
    emulator: EmulatorThread, bus: ServiceBusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting and dead-lettered messages show on their route only; the JSON is ready for scripts."""
    monkeypatch.setenv("DUALBUS_SERVICEBUS__CONNECTION_STRING", emulator.connection_string)
    sessions = _send(bus, 3)
    with bus.get_subscription_receiver(
        "dualbus.vendor", "to-fo", session_id=sessions[0], max_wait_time=2
    ) as r:
        (message,) = r.receive_messages(max_message_count=1, max_wait_time=2)
        r.dead_letter_message(message, reason="TargetRejected", error_description="test")
    result = CliRunner().invoke(app, ["status", "--json", "--interval", "0"])
    assert result.exit_code == 0, result.output
    routes = {(row["area"], row["subscription"]): row for row in orjson.loads(result.stdout)}
    assert routes[("vendor", "to-fo")]["active"] == 2
    assert routes[("vendor", "to-fo")]["dead_lettered"] == 1
    assert routes[("vendor", "to-fo")]["oldest_dead_letter_seconds"] is not None
    assert routes[("vendor", "to-dataverse")]["active"] == 0
    assert routes[("customer", "to-fo")]["dead_lettered"] == 0


def test_status_shows_paused_routes(
    emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A paused route reads as paused, by whom and why, in the table and in the JSON; the others run."""
    monkeypatch.setenv("DUALBUS_SERVICEBUS__CONNECTION_STRING", emulator.connection_string)
    monkeypatch.setenv("DUALBUS_AUDIT_FILE", str(tmp_path / "audit.jsonl"))
    runner = CliRunner()
    paused = runner.invoke(app, ["pause", "customer", "--to", "dataverse", "--reason", "maintenance"])
    assert paused.exit_code == 0, paused.output
    result = runner.invoke(app, ["status", "--json", "--interval", "0"])
    assert result.exit_code == 0, result.output
    routes = {(row["area"], row["subscription"]): row for row in orjson.loads(result.stdout)}
    assert routes[("customer", "to-dataverse")]["paused"] is True
    assert routes[("customer", "to-dataverse")]["paused_reason"] == "maintenance"
    assert routes[("customer", "to-fo")]["paused"] is False
    table = runner.invoke(app, ["status", "--interval", "0"])
    assert table.stdout.count("paused") == 1  # one route's state cell; every other one reads running
    assert "running" in table.stdout
