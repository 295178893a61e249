"""A consumer started on a tenant without dualbus's fields stops at once, naming them, and loses nothing.

The twins started with ``prepared=False`` serve the published entities and tables alone, as a tenant before
the steps of docs/deploy.md: a request naming a field they lack is refused as either service refuses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from azure.servicebus import ServiceBusReceivedMessage

from dualbus.producers.initial_sync import run_initial_sync
from dualbus.producers.runner import open_context, run_producer
from dualbus.producers.settings import ProducerOptions
from dualbus.sandbox.dataverse.server import start_dataverse
from dualbus.sandbox.fo.server import start_fo
from dualbus.sandbox.servicebus.launcher import EmulatorThread
from dualbus.shared.api import ApiClient
from dualbus.shared.bus import bus_client
from dualbus.shared.dataverse_keys import key_gaps, keys_written
from dualbus.shared.envelope import Envelope, Origin
from dualbus.shared.messages import to_message
from dualbus.shared.prerequisites import Lacking, PrerequisiteError, lacking, prerequisite_names
from dualbus.shared.topology import Direction
from tests.twin_settings import IssuedTokens

from .conftest import CLIENT_ID, CLIENTS, SECRET, TOPOLOGY, Pipeline
from .helpers import FlakyProxy
from .samples import event

pytestmark = pytest.mark.integration


@pytest.fixture
def unprepared(bus: EmulatorThread) -> Iterator[Pipeline]:
    with (
        start_dataverse(clients=CLIENTS, limits=None, prepared=False) as dataverse,
        start_fo(clients=CLIENTS, prepared=False) as fo,
    ):
        yield Pipeline(bus, dataverse, fo)


def _waiting(pipeline: Pipeline, change: Envelope, direction: Direction) -> list[ServiceBusReceivedMessage]:
    """The messages still in the subscription, in ``change``'s session (peeked, left in place): the
    subscription requires sessions, so only a session receiver may read it."""
    topic = TOPOLOGY.topic(change.area)
    with (
        bus_client(pipeline.bus_settings) as client,
        client.get_subscription_receiver(
            topic.name, direction.value, session_id=to_message(change).session_id
        ) as receiver,
    ):
        return list(receiver.peek_messages(max_message_count=50))


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("direction", "source", "named"),
    [
        (Direction.TO_FO, "dataverse", "F&O is not prepared for dualbus: Currencies has no "),
        (
            Direction.TO_DATAVERSE,
            "fo",
            "Dataverse is not prepared for dualbus: transactioncurrencies has no ",
        ),
    ],
    ids=["to-fo", "to-dataverse"],
)
async def test_a_consumer_on_an_unprepared_tenant_stops_naming_the_fields_and_dead_letters_nothing(
    unprepared: Pipeline, direction: Direction, source: str, named: str
) -> None:
    """It raises before its first message: the change stays in its subscription, none is dead-lettered."""
    change = event(unprepared.maps["currency"], source, 1)  # type: ignore[arg-type]
    unprepared.publish([change])
    with pytest.raises(PrerequisiteError) as raised:
        await unprepared.consume("currency", direction, until=lambda _metrics: False, within=30)
    message = str(raised.value)
    assert named in message
    assert all(
        name in message for name in prerequisite_names("fo" if direction is Direction.TO_FO else "dataverse")
    )
    assert "docs/deploy.md" in message
    assert unprepared.dead_letters("currency", direction) == []
    assert [m.message_id for m in _waiting(unprepared, change, direction)] == [change.id]


@pytest.mark.asyncio
async def test_every_missing_field_is_named_though_fo_refuses_one_at_a_time(unprepared: Pipeline) -> None:
    """F&O names only the first property it lacks; each is asked again without it, so all show, per entity;
    an entity set the service lacks is named as such; a prepared twin lacks nothing."""
    fields = prerequisite_names("fo")
    wanted = {"Currencies": fields, "CustomersV3": fields}
    async with httpx.AsyncClient() as http:
        tokens = IssuedTokens(unprepared.fo, client_id=CLIENT_ID, secret=SECRET)
        found = await lacking(
            ApiClient(unprepared.fo.url, tokens, http), {**wanted, "NoSuchEntity": fields}, root="data"
        )
        with start_fo(clients=CLIENTS) as prepared:
            tokens = IssuedTokens(prepared, client_id=CLIENT_ID, secret=SECRET)
            ready = await lacking(ApiClient(prepared.url, tokens, http), wanted, root="data")
    assert found == [Lacking("Currencies", fields), Lacking("CustomersV3", fields), Lacking("NoSuchEntity")]
    assert ready == []


@pytest.mark.asyncio
async def test_an_answer_the_check_cannot_read_stops_it_saying_so(unprepared: Pipeline) -> None:
    """A refusal that names no missing property (here a malformed $select) is not taken for "all there"."""
    async with httpx.AsyncClient() as http:
        tokens = IssuedTokens(unprepared.dataverse, client_id=CLIENT_ID, secret=SECRET)
        api = ApiClient(unprepared.dataverse.url, tokens, http)
        with pytest.raises(PrerequisiteError, match="cannot tell whether dualbus's fields are there"):
            await lacking(api, {"accounts": ["name eq 'x'"]}, root="api/data/v9.2")


@pytest.mark.asyncio
async def test_the_fo_producer_on_an_unprepared_tenant_stops_naming_the_fields_it_reads(
    unprepared: Pipeline, tmp_path: Path
) -> None:
    """Every read of the F&O producer names dualbus's fields: it stops at start, naming them per entity."""
    settings = unprepared.settings().model_copy(update={"state_dir": tmp_path})
    with pytest.raises(PrerequisiteError) as raised:
        await asyncio.wait_for(run_producer(Origin.FO, settings, ProducerOptions(), stop=asyncio.Event()), 60)
    message = str(raised.value)
    assert "F&O is not prepared for dualbus: " in message
    assert "CustomersV3 has no DualbusSourceVersion, DualbusWriteDigest" in message


@pytest.mark.asyncio
async def test_an_initial_sync_from_an_unprepared_fo_stops_naming_every_missing_field(
    unprepared: Pipeline, tmp_path: Path
) -> None:
    """Not F&O's refusal of the first page for its first missing field: every field of every entity."""
    settings = unprepared.settings().model_copy(update={"state_dir": tmp_path})
    async with open_context(
        Origin.FO, settings, ProducerOptions(), areas=["currency", "customer"]
    ) as context:
        with pytest.raises(PrerequisiteError) as raised:
            await run_initial_sync(context)
    message = str(raised.value)
    assert "Currencies has no DualbusSourceVersion, DualbusWriteDigest" in message
    assert "CustomersV3 has no DualbusSourceVersion, DualbusWriteDigest" in message


@pytest.mark.asyncio
async def test_a_consumer_started_while_its_target_is_down_receives_nothing_until_it_answers(
    pipeline: Pipeline,
) -> None:
    """The check is asked again while the target refuses; nothing is received meanwhile, so no change meets
    the outage (none retried); once the target answers, the change is applied."""
    proxy = FlakyProxy(urlsplit(pipeline.dataverse.url).port)
    url = await proxy.start()
    proxy.down()
    change = event(pipeline.maps["currency"], "fo", 1)
    pipeline.publish([change])
    consuming = asyncio.create_task(
        pipeline.consume(
            "currency",
            Direction.TO_DATAVERSE,
            lambda metrics: metrics.counts["applied"] >= 1,
            settings=pipeline.settings(dataverse_url=url),
            within=40,
        )
    )
    while proxy.refused < 4:  # the start-up's questions, WhoAmI's and the check's, asked again
        assert not consuming.done(), consuming
        await asyncio.sleep(0.05)
    proxy.up()
    metrics = await consuming
    await proxy.stop()
    assert (metrics.counts["applied"], metrics.counts["retried"]) == (1, 0)
    assert pipeline.dead_letters("currency", Direction.TO_DATAVERSE) == []


@pytest.fixture
def keyless(bus: EmulatorThread) -> Iterator[Pipeline]:
    """A tenant prepared but for the alternate keys of accounts and contacts (docs/deploy.md's step 3)."""
    with (
        start_dataverse(clients=CLIENTS, limits=None, without_keys=frozenset({"accounts", "contacts"})) as dv,
        start_fo(clients=CLIENTS) as fo,
    ):
        yield Pipeline(bus, dv, fo)


@pytest.mark.asyncio
async def test_a_consumer_towards_dataverse_without_the_alternate_keys_stops_naming_them(
    keyless: Pipeline,
) -> None:
    """Every change of those tables would be refused (their rows are addressed by those keys): the
    consumer stops before its first message, naming each key, and the change stays in its subscription."""
    change = event(keyless.maps["customers"], "fo", 1)
    keyless.publish([change])
    with pytest.raises(PrerequisiteError) as raised:
        await keyless.consume("customer", Direction.TO_DATAVERSE, until=lambda _metrics: False, within=30)
    message = str(raised.value)
    assert message.startswith("Dataverse is not prepared for dualbus: ")
    assert "account has no alternate key of (accountnumber, msdyn_company)" in message
    assert "contact has no alternate key of (msdyn_company, msdyn_contactpersonid)" in message
    assert "msdyn_customergroup" not in message  # its key is there
    assert keyless.dead_letters("customer", Direction.TO_DATAVERSE) == []
    assert [m.message_id for m in _waiting(keyless, change, Direction.TO_DATAVERSE)] == [change.id]


@pytest.mark.asyncio
async def test_the_twin_lists_every_key_the_maps_address_rows_by_as_built(unprepared: Pipeline) -> None:
    """Read as a consumer reads them: no gap in any area (the twin holds each map's key, index Active)."""
    async with httpx.AsyncClient() as http:
        tokens = IssuedTokens(unprepared.dataverse, client_id=CLIENT_ID, secret=SECRET)
        api = ApiClient(unprepared.dataverse.url, tokens, http)
        for area in ("company", "currency", "organisation", "customer", "vendor", "product"):
            wanted = keys_written(unprepared.maps, area)
            assert wanted
            assert await key_gaps(api, wanted, root="api/data/v9.2") == []
