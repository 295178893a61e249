"""A write the target applied but whose answer never came back: retried, and still applied exactly once.

The connection breaks after the target committed, so the consumer sees a transport failure and retries a
write that already happened: a create that finds its row, an update already in place, a delete of a row
already gone. Each must end settled once as done (applied, or found applied: a retried delete finds no row
and counts "unchanged"), with the row as the change left it and nothing dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import pytest

from dualbus.sandbox.write_log import WriteLog
from dualbus.shared.envelope import Operation
from dualbus.shared.topology import Direction

from .helpers import FlakyProxy, changes_of, seed, target_row
from .samples import event

pytestmark = pytest.mark.integration

# The writes' paths: F&O's OData service root, Dataverse's Web API (its token endpoint lies elsewhere).
_WRITE_PATHS = {Direction.TO_FO: "/data/", Direction.TO_DATAVERSE: "/api/data/"}
_VERSION_COLUMN = {Direction.TO_FO: "DualbusSourceVersion", Direction.TO_DATAVERSE: "dualbus_sourceversion"}
_DONE = ("applied", "unchanged", "skipped-stale")


def _last_sequence(log: WriteLog) -> int:
    entries = log.after(0)
    return entries[-1].sequence if entries else 0


def _done(counts: Mapping[str, int]) -> int:
    return sum(counts[outcome] for outcome in _DONE)


@pytest.mark.asyncio
@pytest.mark.parametrize("direction", [Direction.TO_FO, Direction.TO_DATAVERSE], ids=lambda d: d.value)
async def test_a_write_whose_answer_is_lost_is_retried_and_applied_once(pipeline, direction):
    """Create, update and delete of one customer, each losing its first write's answer."""
    await seed(pipeline, direction)
    customers = pipeline.maps["customers"]
    source = "fo" if direction is Direction.TO_DATAVERSE else "dataverse"
    to_fo = direction is Direction.TO_FO
    proxy = FlakyProxy(urlsplit((pipeline.fo if to_fo else pipeline.dataverse).url).port)
    url = await proxy.start()
    settings = pipeline.settings(fo_url=url) if to_fo else pipeline.settings(dataverse_url=url)
    stages = [
        event(customers, source, 7, version=1, label="first"),
        event(customers, source, 7, version=2, label="second", base=1),
        event(customers, source, 7, version=3, operation=Operation.DELETE, base=2),
    ]
    log = pipeline.fo.twin.writes if to_fo else pipeline.dataverse.store.writes
    try:
        for number, change_event in enumerate(stages, start=1):
            before = _last_sequence(log)
            proxy.lose_answers(1, under=_WRITE_PATHS[direction])
            pipeline.publish([change_event])
            metrics = await pipeline.consume(
                "customer", direction, lambda m: _done(m.counts) >= 1, settings=settings, within=40
            )
            assert len(proxy.lost) == number, f"stage {number}: no write's answer was lost"
            # The write whose answer was cut off was committed, and its retry did not commit it again.
            written = [(w.table, sorted(w.key.items()), w.operation, w.version) for w in log.after(before)]
            assert written, f"stage {number}: nothing was written"
            assert len(written) == len({repr(entry) for entry in written}), written
            assert _done(metrics.counts) == 1, (number, dict(metrics.counts))
            assert metrics.counts["retried"] >= 1, (number, dict(metrics.counts))
            assert pipeline.dead_letters("customer", direction) == []
            for change in changes_of(pipeline, change_event, direction):
                row = target_row(pipeline, change, direction)
                if change_event.operation is Operation.DELETE:
                    assert row is None, (number, change.table_map.name)
                else:
                    assert row is not None, (number, change.table_map.name)
                    assert int(row[_VERSION_COLUMN[direction]]) == change_event.source_version
    finally:
        await proxy.stop()
