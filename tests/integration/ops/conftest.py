"""An emulator with dualbus's topology, plus an extra "audit" subscription on the customer topic.

The audit subscription takes every customer change (as an analytics subscription would), so that a test can
prove a replay reaches only the subscription its message was dead-lettered from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient

from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ServiceBusSettings
from dualbus.shared.topology import REPLAY_TARGET_PROPERTY, default_topology
from tests.integration.ops.reconcile_support import Twins, start_tap_emulator, twins_in_step

AUDIT = "audit"


def _config_with_audit() -> dict[str, Any]:
    config = render_emulator_config(default_topology())
    (namespace,) = config["UserConfig"]["Namespaces"]
    customer = next(topic for topic in namespace["Topics"] if topic["Name"] == "dualbus.customer")
    rule = f"{REPLAY_TARGET_PROPERTY} IS NULL OR {REPLAY_TARGET_PROPERTY} = '{AUDIT}'"
    customer["Subscriptions"].append(
        {
            "Name": AUDIT,
            "Properties": {"LockDuration": "PT30S", "MaxDeliveryCount": 10, "RequiresSession": False},
            "Rules": [
                {"Name": "all", "Properties": {"FilterType": "Sql", "SqlFilter": {"SqlExpression": rule}}}
            ],
        }
    )
    return config


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with start_in_process(config=load_config(_config_with_audit())) as running:
        yield running


@pytest.fixture
def bus(emulator: EmulatorThread) -> Iterator[ServiceBusClient]:
    with ServiceBusClient.from_connection_string(emulator.connection_string) as client:
        yield client


@pytest.fixture
def bus_settings(emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch) -> ServiceBusSettings:
    monkeypatch.setenv("DUALBUS_SERVICEBUS__CONNECTION_STRING", emulator.connection_string)
    return ServiceBusSettings(connection_string=emulator.connection_string)  # type: ignore[arg-type]


@pytest.fixture
def twins() -> Iterator[Twins]:
    """Both twins holding the same customers, vendors and products (reconcile's tests)."""
    with twins_in_step() as running:
        yield running


@pytest.fixture
def tap_emulator() -> Iterator[EmulatorThread]:
    """An emulator whose topology also has a tap subscription on every topic (reconcile's tests)."""
    with start_tap_emulator() as running:
        yield running
