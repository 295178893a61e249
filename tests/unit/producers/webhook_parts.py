"""What the webhook's tests share: an event, an inbox over a recording Service Bus client, and waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.clock import VersionClock
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.producers.fo_inbox import FoEventInbox
from dualbus.producers.fo_webhook import webhook_app
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.topology import default_topology
from tests.unit.producers.contexts import data_event
from tests.unit.producers.fakes import FakeFoReader, RecordingClient, sent_envelopes

KEY = "k3y-0f-the-webhook"
ROW = {
    "dataAreaId": "usmf",
    "CustomerAccount": "C-1",
    "OrganizationName": "Fabrikam",
    "PartyType": "Organization",
}
EVENT = orjson.dumps(
    data_event("OnExternalCreated", "CustomersV3", "00004c03-0000-0000-0100-000000000000", ROW)
)
# Publishing again after a failure waits this long (the inbox's backoff), so a test sees it happen.
AGAIN = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.01, jitter=0.0)
WITHIN = 5.0
Parts = tuple[RecordingClient, FakeFoReader, FoEventInbox, CheckpointStore]


@contextlib.contextmanager
def webhook_parts(tmp_path: Path) -> Iterator[Parts]:
    """A recording client, the F&O rows, an inbox publishing the customer area, and its store."""
    client = RecordingClient(max_bytes=256 * 1024)
    reader = FakeFoReader()
    reader.put("CustomersV3", ROW)
    store = CheckpointStore(tmp_path / "producer-fo.sqlite3")
    handler = FoEventHandler(
        reader,  # type: ignore[arg-type]  # the in-memory rows read like FoReader
        source_tables(load_maps(), Origin.FO, ["customer"]),
        Publisher(client, default_topology()),  # type: ignore[arg-type]
        store,
        VersionClock(store),
        retry=RetryPolicy(attempts=1),
    )
    try:
        yield client, reader, FoEventInbox(store, handler, retry=AGAIN), store
    finally:
        store.close()


def http_to(inbox: FoEventInbox, key: str | None = KEY) -> httpx.AsyncClient:
    """A client of the webhook app over ``inbox``, in process."""
    app = webhook_app(inbox, key=SecretStr(key) if key else None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://webhook")


@contextlib.asynccontextmanager
async def publishing(inbox: FoEventInbox) -> AsyncIterator[None]:
    """The inbox publishing while the block runs."""
    stop = asyncio.Event()
    running = asyncio.create_task(inbox.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(running, WITHIN)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition``, at most WITHIN seconds."""
    async with asyncio.timeout(WITHIN):
        while not condition():  # noqa: ASYNC110 - the inbox is in SQLite: there is no event to wait on
            await asyncio.sleep(0.01)


def customers(client: RecordingClient) -> list[str]:
    """The customer accounts published so far."""
    if "dualbus.customer" not in client.senders:
        return []
    return [e.key["CustomerAccount"] for e in sent_envelopes(client, "dualbus.customer")]
