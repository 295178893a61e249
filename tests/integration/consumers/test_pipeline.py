"""Consumers apply every area's changes over real sockets: emulator, SDK, twins; order, idempotence, stale."""

from __future__ import annotations

import pytest

from shared.envelope import Operation
from shared.messages import to_message
from shared.topology import Direction

from .conftest import TOPOLOGY
from .helpers import changes_of, seed, target_row
from .samples import event

pytestmark = pytest.mark.integration

ROUTES = [(topic.area, sub.direction) for topic, sub in TOPOLOGY.routes()]


def _source(direction: Direction) -> str:
    return "fo" if direction is Direction.TO_DATAVERSE else "dataverse"


def _target(direction: Direction) -> str:
    return "dataverse" if direction is Direction.TO_DATAVERSE else "fo"


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
@pytest.mark.parametrize("direction", [Direction.TO_DATAVERSE, Direction.TO_FO])
async def test_duplicate_delivery_applies_once(pipeline, direction):
    """The same event delivered twice (a re-publish under another message id) is applied once."""
    currency = pipeline.maps["currency"]
    change = event(currency, _source(direction), 3, version=4, label="d")
    pipeline.publish(
        [to_message(change), to_message(change, message_id=f"{change.id}-again")], area="currency"
    )
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
    pipeline.publish([to_message(first, message_id=f"{first.id}-replay")], area="currency")
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
    pipeline.publish(
        [created, deleted, to_message(deleted, message_id=f"{deleted.id}-again")], area="currency"
    )
    metrics = await pipeline.consume("currency", direction, lambda m: sum(m.counts.values()) >= 3)
    assert metrics.counts["applied"] == 2
    assert metrics.counts["unchanged"] == 1
    [change] = changes_of(pipeline, created, direction)
    assert target_row(pipeline, change, direction) is None
