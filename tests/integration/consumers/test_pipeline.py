"""Consumers apply every area's changes over real sockets: emulator, SDK, twins; order, idempotence, stale."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from azure.servicebus import ServiceBusMessage

from dualbus.shared.envelope import Envelope, Operation
from dualbus.shared.maps import load_maps
from dualbus.shared.messages import to_message
from dualbus.shared.topology import (
    ORIGINAL_ID_PROPERTY,
    REPLAY_COUNT_PROPERTY,
    REPLAY_TARGET_PROPERTY,
    Direction,
    Topology,
)

from .conftest import CLIENTS, TOPOLOGY
from .helpers import changes_of, seed, target_row
from .samples import event

pytestmark = pytest.mark.integration


def _replay(envelope: Envelope, direction: Direction) -> ServiceBusMessage:
    """The event sent again as `dualbus dlq replay` sends it: a replay id, with the original id and count."""
    message = to_message(envelope, message_id=f"{envelope.id}.replay-1")
    replayed = {ORIGINAL_ID_PROPERTY: envelope.id, REPLAY_COUNT_PROPERTY: 1}
    replayed[REPLAY_TARGET_PROPERTY] = direction.value
    message.application_properties = {**(message.application_properties or {}), **replayed}
    return message


def _source(direction: Direction) -> str:
    return "fo" if direction is Direction.TO_DATAVERSE else "dataverse"


def _target(direction: Direction) -> str:
    return "dataverse" if direction is Direction.TO_DATAVERSE else "fo"


# Routes some map writes: company goes F&O to Dataverse only, as dual-write's current map does.
ROUTES = [
    (topic.area, sub.direction)
    for topic, sub in TOPOLOGY.routes()
    if any(m.carries(_target(sub.direction)) for m in load_maps().in_area(topic.area))
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("area", "direction"), ROUTES, ids=[f"{a}-{d.value}" for a, d in ROUTES])
async def test_happy_path_applies_every_map_of_the_area(pipeline, area, direction):
    """Each map of the area lands on the target with its mapped fields and the version mark."""
    await seed(pipeline, direction)
    maps = [m for m in pipeline.maps.in_area(area) if m.carries(_target(direction))]
    events = [
        event(m, _source(direction), 10 * i + n, version=7, label="h")
        for i, m in enumerate(maps)
        for n in (1, 2)
    ]
    pipeline.publish(events)
    metrics = await pipeline.consume(area, direction, lambda m: m.counts["applied"] >= len(events))
    assert metrics.counts["applied"] == len(events)
    for sample in events:
        for change in changes_of(pipeline, sample, direction):
            row = target_row(pipeline, change, direction)
            assert row is not None, change.key
            version_mark = (
                "dualbus_sourceversion" if direction is Direction.TO_DATAVERSE else "DualbusSourceVersion"
            )
            assert row[version_mark] == 7
            # Key parts compare without case: F&O answers dataAreaId in lower case.
            strings = {k: v for k, v in change.fields.items() if isinstance(v, str) and k not in change.key}
            assert {k: row.get(k) for k in strings} == strings
    assert pipeline.dead_letters(area, direction) == []


@pytest.mark.asyncio
async def test_a_topic_with_other_ordering_buckets_is_checked_with_its_own_count(pipeline):
    """Producers put each record in its bucket of the topic's ``ordering_buckets``; the consumer checked
    session ids against the default 32 and dead-lettered most messages of a topic with 8."""
    topology = Topology(
        topics=tuple(
            topic.model_copy(update={"ordering_buckets": 8}) if topic.area == "currency" else topic
            for topic in TOPOLOGY.topics
        )
    )
    changes = [event(pipeline.maps["currency"], "fo", n, version=3, label="b") for n in range(1, 9)]
    pipeline.publish([to_message(change, buckets=8) for change in changes], area="currency")
    metrics = await pipeline.consume(
        "currency", Direction.TO_DATAVERSE, lambda m: sum(m.counts.values()) >= 8, topology=topology
    )
    assert metrics.counts["applied"] == 8
    assert pipeline.dead_letters("currency", Direction.TO_DATAVERSE) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("direction", [Direction.TO_DATAVERSE, Direction.TO_FO])
async def test_duplicate_delivery_applies_once(pipeline, direction):
    """The same event delivered twice (again as a replay, past duplicate detection) is applied once."""
    currency = pipeline.maps["currency"]
    change = event(currency, _source(direction), 3, version=4, label="d")
    pipeline.publish([to_message(change), _replay(change, direction)], area="currency")
    metrics = await pipeline.consume("currency", direction, lambda m: sum(m.counts.values()) >= 2)
    assert metrics.counts["applied"] == 1
    assert metrics.counts["skipped-stale"] == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("direction", [Direction.TO_DATAVERSE, Direction.TO_FO])
async def test_out_of_order_delivery_keeps_the_newest(pipeline, direction):
    """An older change arriving after a newer one for the same record is skipped as stale."""
    currency = pipeline.maps["currency"]
    newer = event(currency, _source(direction), 5, version=9, label="new")
    older = event(currency, _source(direction), 5, version=8, label="old")
    pipeline.publish([newer, older])
    metrics = await pipeline.consume("currency", direction, lambda m: sum(m.counts.values()) >= 2)
    assert (metrics.counts["applied"], metrics.counts["skipped-stale"]) == (1, 1)
    [change] = changes_of(pipeline, newer, direction)
    row = target_row(pipeline, change, direction)
    name = "currencyname" if direction is Direction.TO_DATAVERSE else "Name"
    assert row[name].startswith("new")


@pytest.mark.asyncio
async def test_a_stale_replay_is_skipped_and_counted(pipeline):
    """Replaying an old event after newer ones were applied changes nothing and counts as stale."""
    currency = pipeline.maps["currency"]
    first = event(currency, "fo", 6, version=1, label="v1")
    second = event(currency, "fo", 6, version=2, label="v2")
    pipeline.publish([first, second])
    await pipeline.consume("currency", Direction.TO_DATAVERSE, lambda m: m.counts["applied"] >= 2)
    pipeline.publish([_replay(first, Direction.TO_DATAVERSE)], area="currency")
    metrics = await pipeline.consume(
        "currency", Direction.TO_DATAVERSE, lambda m: sum(m.counts.values()) >= 1
    )
    assert metrics.counts["skipped-stale"] == 1
    assert metrics.counts["applied"] == 0
    [change] = changes_of(pipeline, second, Direction.TO_DATAVERSE)
    assert target_row(pipeline, change, Direction.TO_DATAVERSE)["currencyname"].startswith("v2")


@pytest.mark.asyncio
@pytest.mark.parametrize("direction", [Direction.TO_DATAVERSE, Direction.TO_FO])
async def test_deletes_remove_the_row_and_repeat_harmlessly(pipeline, direction):
    """A delete removes the target row; the same delete again finds nothing to do."""
    currency = pipeline.maps["currency"]
    created = event(currency, _source(direction), 8, version=1)
    deleted = event(currency, _source(direction), 8, version=2, operation=Operation.DELETE)
    pipeline.publish([created, deleted, _replay(deleted, direction)], area="currency")
    metrics = await pipeline.consume("currency", direction, lambda m: sum(m.counts.values()) >= 3)
    assert metrics.counts["applied"] == 2
    assert metrics.counts["unchanged"] == 1
    [change] = changes_of(pipeline, created, direction)
    assert target_row(pipeline, change, direction) is None


@pytest.mark.asyncio
async def test_a_delete_finds_its_target_by_a_key_of_another_length(pipeline):
    """A product deleted in F&O (company, product number) removes the Dataverse product keyed by one part."""
    await seed(pipeline, Direction.TO_DATAVERSE)
    products = pipeline.maps["products"]
    created = event(products, "fo", 4, version=1, label="p")
    deleted = event(products, "fo", 4, version=2, operation=Operation.DELETE)
    [change] = changes_of(pipeline, created, Direction.TO_DATAVERSE)
    [removal] = changes_of(pipeline, deleted, Direction.TO_DATAVERSE)
    assert dict(removal.key) == dict(change.key) == {"productnumber": "USMFK4"}
    pipeline.publish([created, deleted])
    metrics = await pipeline.consume("product", Direction.TO_DATAVERSE, lambda m: m.counts["applied"] >= 2)
    assert metrics.counts["applied"] == 2
    assert target_row(pipeline, change, Direction.TO_DATAVERSE) is None


def _create_as_someone_else(pipeline, source: str, sample) -> None:
    """Create the sample's row on its own side as another application, as a user's edit would."""
    if source == "fo":
        with pipeline.fo.client("workload") as client:
            response = client.post("/data/Currencies", json=sample.data, params={"cross-company": "true"})
        assert response.status_code == 201, response.text
        return
    dataverse = pipeline.dataverse
    token = dataverse.issuer.issue(
        client_id="workload", client_secret=CLIENTS["workload"], scope=dataverse.scope
    )
    response = httpx.post(
        f"{dataverse.api_url}transactioncurrencies",
        json={**sample.data, "exchangerate": 1.0},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert response.status_code == 204, response.text


@pytest.mark.asyncio
async def test_concurrent_edits_on_both_sides_converge_on_dataverse(pipeline):
    """The same record edited in F&O and in Dataverse before either change travelled ends with Dataverse's."""
    currency = pipeline.maps["currency"]
    from_dataverse = event(currency, "dataverse", 12, label="dv")
    from_fo = event(currency, "fo", 12, version=5, label="fo", base=0)
    await asyncio.to_thread(_create_as_someone_else, pipeline, "dataverse", from_dataverse)
    await asyncio.to_thread(_create_as_someone_else, pipeline, "fo", from_fo)
    [dv_change] = changes_of(pipeline, from_fo, Direction.TO_DATAVERSE)
    row_version = int(target_row(pipeline, dv_change, Direction.TO_DATAVERSE)["versionnumber"])
    from_dataverse = from_dataverse.model_copy(update={"source_version": row_version})
    pipeline.publish([from_fo, from_dataverse])
    to_dataverse = await pipeline.consume(
        "currency", Direction.TO_DATAVERSE, lambda m: sum(m.counts.values()) >= 1
    )
    to_fo = await pipeline.consume("currency", Direction.TO_FO, lambda m: sum(m.counts.values()) >= 1)
    assert to_dataverse.counts["skipped-conflict"] == 1
    assert to_fo.counts["applied"] == 1
    [fo_change] = changes_of(pipeline, from_dataverse, Direction.TO_FO)
    assert target_row(pipeline, dv_change, Direction.TO_DATAVERSE)["currencyname"] == "dv12"
    assert target_row(pipeline, fo_change, Direction.TO_FO)["Name"] == "dv12"
