"""The F&O full scan: every row of every entity, compared with what was published, so that nothing is missed.

Standard F&O entities expose no modified time, so changes cannot be asked for; and data events can be missed
(the producer down longer than F&O retries, an event it could not identify). The scan reads every row of each
entity page by page (``@odata.nextLink``), digests each map's carried data per key, publishes the rows whose
digest differs from the stored one (``source_version`` from the producer's clock), then a delete for each
stored key the scan did not see (with the delete values stored beside its digest), and records the digests
after each publish (a crash in between republishes, never skips). Digests live in the checkpoint store
(SQLite), so memory holds one page.

Server-driven pages are positions (``$skip``): a row deleted during a scan shifts later rows back, so one
may go unread. A key the scan did not see is therefore looked up again before its delete is published.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from dualbus.producers.errors import SourceError
from dualbus.producers.flow import publish_then_checkpoint
from dualbus.producers.fo_reader import KEYS_PER_QUERY, Row
from dualbus.producers.fo_rows import (
    FoBatch,
    FoRowPublisher,
    FoSource,
    base_version,
    key_from_text,
    key_text,
    map_key,
)
from dualbus.producers.tables import SourceTable

__all__ = ["FoScanner"]

_log = logging.getLogger(__name__)
# Unseen keys handled per step (looked up again ``KEYS_PER_QUERY`` per request).
_UNSEEN_STEP = 200


class FoScanner(FoRowPublisher):
    """Publishes every F&O row whose state differs from the last one published, and deletes of gone rows."""

    async def scan_once(self) -> int:
        """One scan of every entity; returns how many envelopes were published.

        An entity F&O answers nonsense for is logged and skipped, so that it holds up no other; the first
        such failure is raised once the round is over.
        """
        published, failures = 0, []
        for source in self._sources.values():
            try:
                published += await self.scan_entity(source.name)
            except SourceError as exc:
                _log.warning("scan of %s failed: %s", source.name, exc)
                failures.append(exc)
        if failures:
            raise failures[0]
        return published

    async def scan_entity(self, entity: str) -> int:
        """Scan one entity: publish changed rows, then deletes of the rows gone since the last scan."""
        source = self._sources[entity]
        # Clock values are unique and increasing: a row marked with a later one was seen by this scan
        # or written by an event after it started.
        generation = self._clock.next()
        pages = aiter(self._reader.pages(source.name, select=source.select, orderby=source.schema.keys))
        published = 0
        while True:
            async with self._locks(source.name):
                page = await anext(pages, None)
                if page is None:
                    break
                published += await self._record(source, page, generation)
        for table in source.tables:
            published += await self._gone(source, table, generation)
        _log.info("scanned %s: %d published", source.name, published)
        return published

    async def _record(self, source: FoSource, page: list[Row], generation: int) -> int:
        batch = FoBatch(self._clock, seen=generation)
        states: list[tuple[SourceTable, Row, str | None]] = []
        for table in source.tables:
            keyed = [(key_text(key), key, row) for row in page if (key := map_key(table, row))]
            stored = self._store.digests(table.table_map.name, [text for text, _, _ in keyed])
            for text, key, row in keyed:
                if table.takes(row):
                    states.append((table, row, stored.get(text)))
                elif text in stored:
                    # Left this map; its delete goes first, as the event handler's does.
                    batch.delete(table, key, base_version(row), row)
        for table, row, digest in states:
            batch.state(table, row, digest, None)
        return await self._publish(batch)

    async def _gone(self, source: FoSource, table: SourceTable, generation: int) -> int:
        published = 0
        while True:
            async with self._locks(source.name):
                unseen = self._store.unseen(table.table_map.name, generation, _UNSEEN_STEP)
                if not unseen:
                    return published
                published += await self._settle(source, table, unseen, generation)

    async def _settle(self, source: FoSource, table: SourceTable, unseen: list[str], generation: int) -> int:
        """Look the unseen keys up again: publish what exists after all, delete the rest."""
        found = await self._lookup(source, table, [key_from_text(text) for text in unseen])
        stored = self._store.digests(table.table_map.name, unseen)
        # The row is gone: what names it on the other side is what was stored when it was last published.
        values = self._store.delete_data(table.table_map.name, unseen)
        batch = FoBatch(self._clock, seen=generation)
        for text in unseen:
            row = found.get(text.casefold())
            if row is None:
                batch.delete(table, key_from_text(text), None, values.get(text))
                continue
            batch.state(table, row, stored.get(text), None)
            if key_text(table.key_of(row)) != text:
                # Found under its key in another case (F&O compares keys without case): one record.
                batch.forget(table, text)
        return await self._publish(batch)

    async def _lookup(
        self, source: FoSource, table: SourceTable, keys: list[dict[str, str | int]]
    ) -> Mapping[str, Row]:
        found: dict[str, Row] = {}
        for start in range(0, len(keys), KEYS_PER_QUERY):
            rows = await self._reader.matching(
                source.schema, keys[start : start + KEYS_PER_QUERY], source.select
            )
            for row in rows:
                key = map_key(table, row)
                if key is not None and table.takes(row):
                    found.setdefault(key_text(key).casefold(), row)
        return found

    async def _publish(self, batch: FoBatch) -> int:
        outbox = batch.outbox
        await publish_then_checkpoint(
            self._publisher, self._store, outbox.envelopes, {}, digests=outbox.digests, retry=self._retry
        )
        self._counted([batch])
        return len(outbox.envelopes)
