"""Running parts for the producers' integration tests: the emulator, the twins, a tap on every topic."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode
from pydantic import SecretStr

from dualbus.sandbox.identity import user_id_for
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.server import EmulatorServer
from dualbus.shared.envelope import Envelope
from dualbus.shared.message_batches import envelopes_of
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ServiceBusSettings, Settings
from dualbus.shared.topology import default_topology
from tests.twin_settings import api_environment, api_settings

TAP = "test-tap"
EVENTS_QUEUE = "fo-data-events"
DUALBUS = "dualbus"
OWN_USERS = (DUALBUS, user_id_for(DUALBUS))
WEBHOOK_KEY = "webhook-k3y-for-tests"


def emulator_config() -> dict[str, Any]:
    """The topology's Config.json plus a session-less tap subscription per topic and an F&O event queue."""
    config = render_emulator_config(default_topology())
    namespace = config["UserConfig"]["Namespaces"][0]
    for topic in namespace["Topics"]:
        topic["Subscriptions"].append(
            {
                "Name": TAP,
                "Properties": {"RequiresSession": False, "LockDuration": "PT1M", "MaxDeliveryCount": 10},
            }
        )
    namespace["Queues"].append({"Name": EVENTS_QUEUE, "Properties": {"RequiresSession": False}})
    return config


@dataclass
class Emulator:
    """A running emulator and its thread."""

    server: EmulatorServer
    thread: threading.Thread

    @property
    def connection_string(self) -> str:
        return self.server.connection_string

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


@contextmanager
def running_emulator(data_dir: Path | None = None) -> Iterator[Emulator]:
    """An emulator on a free loopback port, serving from a background thread."""
    server = EmulatorServer(
        config=load_config(emulator_config()),
        data_dir=data_dir,
        keys={"RootManageSharedAccessKey": SecretStr("k3y")},
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="emulator")
    thread.start()
    emulator = Emulator(server, thread)
    try:
        yield emulator
    finally:
        emulator.stop()


def drain_tap(
    connection_string: str,
    areas: Mapping[str, int] | None = None,
    *,
    idle: float = 1.0,
    timeout: float = 30.0,
    expect: int | None = None,
) -> list[Envelope]:
    """Every envelope on the tap subscriptions of the given areas (all areas when None), receive-and-delete.

    Stops once ``expect`` envelopes were read, or after ``idle`` seconds without one.
    """
    wanted = list(areas) if areas is not None else list(default_topology().areas)
    found: list[Envelope] = []
    deadline = time.monotonic() + timeout
    with ServiceBusClient.from_connection_string(connection_string) as client, ExitStack() as stack:
        # Entering a receiver opens its link; a first short receive would time out while it opens.
        receivers = [
            stack.enter_context(
                client.get_subscription_receiver(
                    topic_name=f"dualbus.{area}",
                    subscription_name=TAP,
                    receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE,
                )
            )
            for area in wanted
        ]
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            got = 0
            for receiver in receivers:
                for message in receiver.receive_messages(max_message_count=500, max_wait_time=0.2):
                    changes = envelopes_of(message)
                    found.extend(changes)
                    got += len(changes)
            if expect is not None and len(found) >= expect:
                break
            if got:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > idle and expect is None:
                break
    return found


def tapped(connection_string: str, area: str) -> int:
    """How many envelopes wait on an area's tap subscription, counted by peeking (nothing is taken)."""
    with (
        ServiceBusClient.from_connection_string(connection_string) as client,
        client.get_subscription_receiver(topic_name=f"dualbus.{area}", subscription_name=TAP) as receiver,
    ):
        return len(receiver.peek_messages(max_message_count=500))


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def settings_for(
    emulator: Emulator,
    state_dir: Path,
    *,
    fo: Any = None,
    dataverse: Any = None,
) -> Settings:
    """Settings pointing at the emulator and the running twins (client "dualbus")."""
    values: dict[str, Any] = {
        "servicebus": ServiceBusSettings(connection_string=SecretStr(emulator.connection_string)),
        "state_dir": state_dir,
    }
    if fo is not None:
        values["fo"] = api_settings(fo, client_id=DUALBUS, secret=fo.clients[DUALBUS])
    if dataverse is not None:
        values["dataverse"] = api_settings(dataverse, client_id=DUALBUS, secret=DV_CLIENTS[DUALBUS])
    return Settings(**values)


DV_CLIENTS = {DUALBUS: "pipeline-secret", "maker": "maker-secret"}


def environment_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The DUALBUS_* environment that reproduces ``settings`` in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALBUS_")}
    assert settings.servicebus is not None
    assert settings.servicebus.connection_string is not None
    env["DUALBUS_SERVICEBUS__CONNECTION_STRING"] = settings.servicebus.connection_string.get_secret_value()
    env["DUALBUS_STATE_DIR"] = str(settings.state_dir)
    for name, api in (("FO", settings.fo), ("DATAVERSE", settings.dataverse)):
        if api is None:
            continue
        env |= api_environment(name, api)
    env.update(extra)
    return env


class ProducerProcess:
    """``python -m dualbus.producers`` in a subprocess, its stderr collected by a thread."""

    def __init__(self, origin: str, env: dict[str, str], areas: str | None = None) -> None:
        command = [sys.executable, "-m", "dualbus.producers", "--from", origin]
        if areas:
            command += ["--areas", areas]
        self.lines: list[str] = []
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def wait_started(self, timeout: float = 60.0) -> None:
        """Wait for the producer's start-up log line; fail with its output if it died or hung."""
        deadline = time.monotonic() + timeout
        while not any("producer started" in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the producer did not start:\n" + "".join(self.lines[-30:]))
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.kill()
        self.process.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close()


def customer(account: str, name: str) -> dict[str, object]:
    """An organisation customer of company usmf, referring to no other row (the twin checks relations)."""
    return {
        "dataAreaId": "usmf",
        "CustomerAccount": account,
        "OrganizationName": name,
        "PartyType": "Organization",
    }


def wait_healthy(url: str) -> None:
    """Wait until the webhook answers its health check."""
    for _ in range(200):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered")
