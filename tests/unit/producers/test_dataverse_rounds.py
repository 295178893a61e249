"""A Dataverse poll round reads its tables side by side, and one failing table stops none of the others."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.errors import SourceError
from dualbus.producers.events import EchoFilter
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import SourceTable, source_tables
from dualbus.shared.envelope import Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import default_topology
from tests.unit.producers.fakes import RecordingClient


class _Rounds:
    """Stands in for each table's poll: notes how many are in flight at once and which finished."""

    def __init__(self, failing: str | None = None) -> None:
        self.in_flight = self.most = 0
        self.finished: list[str] = []
        self.failing = failing

    async def poll_table(self, table: SourceTable) -> int:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.01)  # a table's round trip
        self.in_flight -= 1
        if table.name == self.failing:
            raise SourceError(f"{table.name} answered nonsense")
        self.finished.append(table.name)
        return 1


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CheckpointStore]:
    opened = CheckpointStore(tmp_path / "producer-dataverse.sqlite3")
    yield opened
    opened.close()


def _source(store: CheckpointStore, rounds: _Rounds) -> DataverseSource:
    tables = source_tables(load_maps(), Origin.DATAVERSE, ["customer", "vendor"])
    publisher = Publisher(RecordingClient(max_bytes=256 * 1024), default_topology())  # type: ignore[arg-type]
    source = DataverseSource(None, tables, publisher, store, EchoFilter.of())  # type: ignore[arg-type]
    source.poll_table = rounds.poll_table  # type: ignore[method-assign]
    return source


@pytest.mark.asyncio
async def test_a_round_polls_every_table_at_once(store: CheckpointStore) -> None:
    rounds = _Rounds()
    source = _source(store, rounds)
    tables = len(source._tables)
    assert tables > 2
    assert await source.poll_once() == tables
    assert rounds.most == tables


@pytest.mark.asyncio
async def test_a_failing_table_is_raised_after_the_others_finished(store: CheckpointStore) -> None:
    rounds = _Rounds(failing="accounts")
    source = _source(store, rounds)
    with pytest.raises(SourceError, match="accounts"):
        await source.poll_once()
    assert len(rounds.finished) == len(source._tables) - 1
