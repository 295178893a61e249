"""Twins in step for reconcile tests: F&O seeded by the workload, Dataverse filled by the real sink."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from azure.servicebus import ServiceBusClient, ServiceBusReceiveMode
from pydantic import SecretStr

from dualbus.consumers import ConsumerMetrics, DataverseSink, RuntimeOptions, TargetChange, run_consumer
from dualbus.producers.clock import VersionClock
from dualbus.sandbox.dataverse import RunningDataverse, start_dataverse
from dualbus.sandbox.fo import FoHandle, start_fo
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.sandbox.workload import generate, load_fo
from dualbus.shared.api import ApiClient
from dualbus.shared.envelope import Envelope
from dualbus.shared.identity import open_tokens
from dualbus.shared.maps import load_maps, map_order, passes_source_filter, to_dataverse
from dualbus.shared.message_batches import envelopes_of
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ApiSettings, ServiceBusSettings, Settings
from dualbus.shared.topology import Direction, default_topology
from tests.twin_settings import api_environment
from tests.twin_settings import api_settings as twin_api_settings

# The consumer stops within its shutdown deadline (5 s here) and the closing of its clients.
_STOP_WITHIN_SECONDS = 30.0

DUALBUS = "dualbus"
DV_CLIENTS = {DUALBUS: "pipeline-secret", "maker": "maker-secret"}
# Small pages on both twins, so that every read crosses several pages.
PAGE_SIZE = 7


@dataclass
class Twins:
    """Both twins running, their contents in step, and settings that reach them."""

    fo: FoHandle
    dataverse: RunningDataverse
    settings: Settings

    def fo_client(self) -> httpx.Client:
        """A client for the F&O twin acting as a person (not dualbus)."""
        return self.fo.client("workload")

    def dataverse_client(self) -> httpx.Client:
        """A client for the Dataverse Web API acting as a maker (not dualbus)."""
        scope = self.dataverse.scope
        token = self.dataverse.issuer.issue(client_id="maker", client_secret=DV_CLIENTS["maker"], scope=scope)
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        return httpx.Client(base_url=self.dataverse.api_url, headers=headers)

    def with_servicebus(self, connection_string: str) -> Settings:
        """These settings plus a Service Bus connection string."""
        servicebus = ServiceBusSettings(connection_string=SecretStr(connection_string))
        return self.settings.model_copy(update={"servicebus": servicebus})


def api_settings(twin: Any, secret: str) -> ApiSettings:
    """API settings for the dualbus client of one twin."""
    return twin_api_settings(twin, client_id=DUALBUS, secret=secret)


@contextmanager
def twins_in_step(*, customers: int = 12, vendors: int = 4, products: int = 4) -> Iterator[Twins]:
    """Start both twins, seed F&O, and copy every F&O → Dataverse map's rows over as a consumer would."""
    with (
        start_fo(page_size=PAGE_SIZE) as fo,
        start_dataverse(clients=DV_CLIENTS, limits=None) as dataverse,
    ):
        with fo.client("workload") as client:
            load_fo(client, generate(3, customers=customers, vendors=vendors, products=products))
        settings = Settings(
            fo=api_settings(fo, fo.clients[DUALBUS]),
            dataverse=api_settings(dataverse, DV_CLIENTS[DUALBUS]),
        )
        asyncio.run(_copy_to_dataverse(settings))
        yield Twins(fo, dataverse, settings)


def _pages(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    body = client.get(path).json()
    rows: list[dict[str, Any]] = list(body["value"])
    while "@odata.nextLink" in body:
        body = client.get(body["@odata.nextLink"]).json()
        rows.extend(body["value"])
    return rows


async def _copy_to_dataverse(settings: Settings) -> None:
    assert settings.fo is not None
    assert settings.dataverse is not None
    async with (
        httpx.AsyncClient() as http,
        open_tokens(settings.fo) as fo_tokens,
        open_tokens(settings.dataverse) as dv_tokens,
    ):
        fo = ApiClient(settings.fo.url, fo_tokens, http)
        dv = ApiClient(settings.dataverse.url, dv_tokens, http)
        sink = DataverseSink(dv)
        for table_map in map_order(load_maps()):
            if not table_map.carries("dataverse"):
                continue
            for row in await _all_fo_rows(fo, table_map.fo_entity):
                if passes_source_filter(table_map, "fo", row):
                    await sink.apply(_change(table_map, row))


_CLOCK = VersionClock()


def _change(table_map: Any, row: dict[str, Any]) -> TargetChange:
    change = to_dataverse(table_map, row)
    return TargetChange(
        table_map=table_map,
        key=change.key,
        fields=change.payload,
        lookups=change.lookups,
        source_version=_CLOCK.next(),
    )


async def _all_fo_rows(api: ApiClient, entity: str) -> list[dict[str, Any]]:
    response = await api.request("GET", f"data/{entity}", params={"cross-company": "true"})
    body = response.json()
    rows: list[dict[str, Any]] = list(body["value"])
    while "@odata.nextLink" in body:
        body = (await api.request("GET", body["@odata.nextLink"])).json()
        rows.extend(body["value"])
    return rows


TAP = "reconcile-tap"


def emulator_config() -> dict[str, Any]:
    """The topology's Config.json plus a session-less subscription on every topic that sees every event."""
    config = render_emulator_config(default_topology())
    for topic in config["UserConfig"]["Namespaces"][0]["Topics"]:
        properties = {"RequiresSession": False, "LockDuration": "PT1M", "MaxDeliveryCount": 10}
        topic["Subscriptions"].append({"Name": TAP, "Properties": properties})
    return config


@contextmanager
def start_tap_emulator() -> Iterator[EmulatorThread]:
    """An emulator with the topology and a tap on every topic (``emulator_config``)."""
    keys = {"RootManageSharedAccessKey": SecretStr("k3y")}
    with start_in_process(config=load_config(emulator_config()), keys=keys) as running:
        yield running


def drain_tap(
    connection_string: str, area: str, *, idle: float = 1.5, timeout: float = 20.0
) -> list[Envelope]:
    """Every envelope on one area's tap (receive-and-delete), until it stays quiet for ``idle`` seconds."""
    found: list[Envelope] = []
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    with (
        ServiceBusClient.from_connection_string(connection_string) as client,
        client.get_subscription_receiver(
            topic_name=default_topology().topic(area).name,
            subscription_name=TAP,
            receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE,
        ) as receiver,
    ):
        while time.monotonic() < deadline and time.monotonic() - quiet_since < idle:
            messages = receiver.receive_messages(max_message_count=100, max_wait_time=0.3)
            if messages:
                quiet_since = time.monotonic()
            found.extend(e for message in messages for e in envelopes_of(message))
    return found


def command_environment(settings: Settings) -> dict[str, str]:
    """The DUALBUS_* variables that give a command these settings."""
    env: dict[str, str] = {}
    for name, api in (("FO", settings.fo), ("DATAVERSE", settings.dataverse)):
        assert api is not None
        env |= api_environment(name, api)
    if settings.servicebus is not None and settings.servicebus.connection_string is not None:
        env["DUALBUS_SERVICEBUS__CONNECTION_STRING"] = (
            settings.servicebus.connection_string.get_secret_value()
        )
    return env


@asynccontextmanager
async def customer_consumer(
    settings: Settings, metrics: ConsumerMetrics | None = None
) -> AsyncIterator[None]:
    """The customer consumer to Dataverse, running while the block runs (short waits: it stops soon after)."""
    stop = asyncio.Event()
    options = RuntimeOptions(session_wait=0.5, idle_wait=0.3, shutdown_deadline=5.0)
    consumer = asyncio.create_task(
        run_consumer(
            settings, "customer", Direction.TO_DATAVERSE, stop=stop, options=options, metrics=metrics
        )
    )
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(consumer), _STOP_WITHIN_SECONDS)
        except TimeoutError:
            # Rather than pytest's timeout with nothing to go by: what every task of the loop waited on.
            waits = "\n".join(_awaiting(task) for task in asyncio.all_tasks())
            raise AssertionError(f"the consumer did not stop in {_STOP_WITHIN_SECONDS} s:\n{waits}") from None


def _awaiting(task: asyncio.Task[Any]) -> str:
    """The task and the chain of awaits it is suspended in (``Task.print_stack`` shows only the first)."""
    lines = [repr(task)]
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return "\n".join(lines)
