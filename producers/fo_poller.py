"""OData polling for F&O entities without data events, with a persisted ``ModifiedDateTime`` watermark.

Each round asks for rows modified after the watermark, oldest first, a bounded page at a time; the
watermark moves to the last row of a page only after that page was published. F&O stamps every write
(the twin strictly increasingly), so "greater than the watermark" misses nothing and re-reads nothing.
Polling cannot see deletes: entities whose deletes matter should use data events.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from producers.checkpoints import CheckpointStore
from producers.events import EchoFilter, build_envelope, fo_version, parse_time
from producers.flow import Backoff, Outbox, publish_then_checkpoint
from producers.fo_reader import FoReader
from producers.publisher import Publisher
from producers.tables import SourceTable
from shared.envelope import Operation, Origin

__all__ = ["FoPoller", "watermark_name"]


def watermark_name(table: SourceTable) -> str:
    """The checkpoint name of one map's watermark."""
    return f"fo.watermark.{table.table_map.name}"


class FoPoller:
    """Publishes rows changed since each table's watermark; ``poll_once`` is one round over all tables."""

    def __init__(
        self,
        reader: FoReader,
        tables: Iterable[SourceTable],
        publisher: Publisher,
        store: CheckpointStore,
        echo: EchoFilter,
        *,
        page_size: int = 1000,
        backoff: Backoff | None = None,
    ) -> None:
        self._reader = reader
        self._tables = list(tables)
        self._publisher = publisher
        self._store = store
        self._echo = echo
        self._page_size = page_size
        self._backoff = backoff or Backoff()
        self.skipped_echo = 0

    async def poll_once(self) -> int:
        """Publish every table's changes since its watermark; returns how many events were published."""
        published = 0
        for table in self._tables:
            while True:
                count, full = await self._poll_page(table)
                published += count
                if not full:
                    break
        return published

    async def _poll_page(self, table: SourceTable) -> tuple[int, bool]:
        watermark = self._store.get(watermark_name(table))
        rows = await self._reader.page(
            table.name,
            filter_=f"ModifiedDateTime gt {watermark}" if watermark else None,
            orderby="ModifiedDateTime asc",
            top=self._page_size,
        )
        if not rows:
            return 0, False
        outbox = Outbox(checkpoints={watermark_name(table): rows[-1]["ModifiedDateTime"]})
        for row in rows:
            self._add(table, row, outbox)
        await publish_then_checkpoint(
            self._publisher, self._store, outbox.envelopes, outbox.checkpoints, backoff=self._backoff
        )
        self.skipped_echo += outbox.skipped_echo
        if outbox.skipped_echo:
            self._publisher.metrics.skipped_echo.add(outbox.skipped_echo, {"area": table.area})
        return len(outbox.envelopes), len(rows) >= self._page_size

    def _add(self, table: SourceTable, row: dict[str, Any], outbox: Outbox) -> None:
        if not table.takes(row):
            return
        if self._echo.is_echo(Origin.FO, row):
            outbox.skipped_echo += 1
            return
        modified = row["ModifiedDateTime"]
        # Polling cannot tell a create from an update; consumers apply both as an upsert.
        outbox.envelopes.append(
            build_envelope(
                table, row, Operation.UPDATE, source_version=fo_version(modified), time=parse_time(modified)
            )
        )
