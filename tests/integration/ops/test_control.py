"""Pause and resume commands travel on the control queue; every reader sees the latest per route."""

from __future__ import annotations

import pytest
from azure.servicebus import ServiceBusClient
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient

from dualbus.sandbox.servicebus.launcher import EmulatorThread
from dualbus.shared.control import PauseWatcher, read_states, send_command
from dualbus.shared.topology import default_topology

pytestmark = pytest.mark.integration

QUEUE = default_topology().control_queue


def test_latest_command_per_route_wins(bus: ServiceBusClient) -> None:
    """Pausing then resuming one route, and pausing another, reads back as the latest state of each."""
    send_command(bus, QUEUE, route="customer/to-fo", paused=True, by="ops", reason="maintenance")
    send_command(bus, QUEUE, route="vendor/to-dataverse", paused=True, by="ops")
    send_command(bus, QUEUE, route="customer/to-fo", paused=False, by="ops")
    states = read_states(bus, QUEUE)
    assert states["customer/to-fo"].paused is False
    assert states["vendor/to-dataverse"].paused is True
    assert states["vendor/to-dataverse"].by == "ops"
    assert read_states(bus, QUEUE) == states  # reading removes nothing


@pytest.mark.asyncio
async def test_watcher_follows_pause_and_resume(emulator: EmulatorThread, bus: ServiceBusClient) -> None:
    """A consumer's watcher sees its route paused, ignores other routes, and sees the resume."""
    async with AsyncServiceBusClient.from_connection_string(emulator.connection_string) as client:
        watcher = PauseWatcher(client, QUEUE, "customer/to-dataverse", interval=0.1)
        await watcher.poll_once()
        assert not watcher.paused
        send_command(bus, QUEUE, route="customer/to-dataverse", paused=True, by="ops")
        send_command(bus, QUEUE, route="vendor/to-fo", paused=False, by="ops")
        await watcher.poll_once()
        assert watcher.paused
        assert watcher.state is not None
        assert watcher.state.by == "ops"
        send_command(bus, QUEUE, route="customer/to-dataverse", paused=False, by="ops")
        await watcher.poll_once()
        assert not watcher.paused
