"""The Dataverse source: change tracking per table, deletes included, delta tokens kept after publish.

A first request with ``Prefer: odata.track-changes`` returns every row and a ``@odata.deltaLink``; each later
request with the link's ``$deltatoken`` returns rows created or changed since (newest state) and deleted rows
as ``$deletedEntity`` entries that carry only the row id. An expired or unknown token (``0x80044352``,
ExpiredVersionStamp) means: sync again in full. The source then takes a new snapshot, publishes every row
and a delete for every row it knew that is gone, so no change is lost. A row index remembers, per map, each
id's natural key and the values its delete must carry (``SourceTable.delete_fields``).
See https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems

Change tracking returns lookups as ``_x_value`` GUIDs and supports no ``$expand``; the source resolves each
GUID to the target row's natural key (cached), so events carry ``{"msdyn_company": {"cdm_companycode": ...}}``
as the maps expect.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.dv_lookups import LookupResolver, primary_id_column, select_columns
from dualbus.producers.errors import SourceError
from dualbus.producers.events import EchoFilter, build_envelope, parse_time
from dualbus.producers.flow import PUBLISH_RETRY, Outbox, publish_then_checkpoint
from dualbus.producers.fo_rows import key_text
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import SourceTable
from dualbus.shared.api import ApiClient, error_message
from dualbus.shared.envelope import Operation
from dualbus.shared.errors import TransformError
from dualbus.shared.http import Response
from dualbus.shared.retry import RetryPolicy
from dualbus.shared.together import side_by_side

__all__ = ["EXPIRED_TOKEN_CODE", "DataverseSource"]

_log = logging.getLogger(__name__)
EXPIRED_TOKEN_CODE = "0x80044352"  # noqa: S105 - an error code, not a secret
_OK = 200
_CHUNK = 1000


class DataverseSource:
    """Reads every table's changes and publishes them: ``poll_table`` one table (the producer runs each on
    its own schedule, ``producers.poll_pace``), ``poll_once`` all of them once."""

    def __init__(
        self,
        api: ApiClient,
        tables: Iterable[SourceTable],
        publisher: Publisher,
        store: CheckpointStore,
        echo: EchoFilter,
        *,
        retry: RetryPolicy = PUBLISH_RETRY,
    ) -> None:
        self._api = api
        self._tables = list(tables)
        self._publisher = publisher
        self._store = store
        self._echo = echo
        self._resolver = LookupResolver(api, [t.table_map for t in self._tables])
        self._retry = retry
        self.skipped_echo = 0
        self.unkeyed = 0
        # When each table's last read started: what a delta returns was changed after it (see _change_time).
        self._read_at: dict[str, datetime] = {}

    async def poll_once(self) -> int:
        """Publish every table's changes since its last token; returns how many events were published.

        The tables are polled side by side: each has its own token and checkpoint, so a round costs the
        slowest table's round trips rather than the sum of all of them, which a change would otherwise wait
        for on top of the interval. A failing table is raised once the others have finished (their tokens
        kept), and the round runs again.
        """
        return sum(await side_by_side(self.poll_table(table) for table in self._tables))

    async def poll_table(self, table: SourceTable) -> int:
        """Publish one table's changes (or a full snapshot when it has no valid token)."""
        name = _token_name(table)
        token = self._store.get(name)
        started = datetime.now(UTC)
        if token is not None:
            body = await self._get(table, {"$deltatoken": str(token)}, track=False)
            if body is not None:
                published = await self._publish_delta(table, body, self._read_at.get(name))
                self._read_at[name] = started
                return published
            _log.warning("the delta token of %s has expired: taking a new snapshot", table.name)
        published = await self.snapshot(table, since=self._read_at.get(name))
        self._read_at[name] = started
        return published

    async def snapshot(self, table: SourceTable, *, since: datetime | None = None) -> int:
        """Publish every row of a table, a delete for each known row that is gone, and keep the new token.

        ``since``: when the last read of the table started, if this process made one; a row gone since was
        deleted after it (the deletes' event time)."""
        rows, token = await self._read_all(table)
        seen = {str(row.get(primary_id_column(table.name))) for row in rows}
        gone = [row_id for row_id in self._store.row_ids(_scope(table)) if row_id not in seen]
        published = 0
        for start in range(0, len(rows), _CHUNK):
            published += await self._publish_rows(table, rows[start : start + _CHUNK], [], None)
        # The token goes last: a crash before it re-reads the snapshot rather than skip the rest of it.
        return published + await self._publish_rows(table, [], gone, token, since)

    async def _publish_delta(self, table: SourceTable, body: dict[str, Any], since: datetime | None) -> int:
        """Publish a delta page by page. More changes than a page holds come with ``@odata.nextLink``, and
        only the last page carries the delta link: its token is kept once every page is published, so a
        crash between pages reads the delta again rather than skip the rest of it."""
        published = 0
        while True:
            entries: list[dict[str, Any]] = body.get("value", [])
            deleted = [str(e["id"]) for e in entries if "$deletedEntity" in str(e.get("@odata.context", ""))]
            rows = [e for e in entries if "$deletedEntity" not in str(e.get("@odata.context", ""))]
            link = body.get("@odata.nextLink")
            # "An empty JSON response is returned if no table changes have occurred" (use-change-tracking-
            # synchronize-data-external-systems.md): with no change and no new delta link, the token held
            # stays, where a missing link failed every poll of a table that had not changed.
            unchanged = not entries and not link and "@odata.deltaLink" not in body
            token = None if link or unchanged else _delta_token(body)
            published += await self._publish_rows(table, rows, deleted, token, since)
            if not link:
                return published
            body = await self._follow(table, str(link), headers=None)

    async def _publish_rows(
        self,
        table: SourceTable,
        rows: list[dict[str, Any]],
        deleted: list[str],
        token: str | None,
        since: datetime | None = None,
    ) -> int:
        outbox = Outbox()
        for row in rows:
            await self._add_row(table, row, outbox, since)
        for row_id in deleted:
            self._add_delete(table, row_id, outbox, since)
        if token is not None:
            outbox.checkpoints[_token_name(table)] = token
        await publish_then_checkpoint(
            self._publisher,
            self._store,
            outbox.envelopes,
            outbox.checkpoints,
            index=outbox.index,
            retry=self._retry,
        )
        self.skipped_echo += outbox.skipped_echo
        if outbox.skipped_echo:
            self._publisher.metrics.skipped_echo.add(outbox.skipped_echo, {"area": table.area})
        return len(outbox.envelopes)

    async def _add_row(
        self, table: SourceTable, raw: dict[str, Any], outbox: Outbox, since: datetime | None
    ) -> None:
        row_id = str(raw[primary_id_column(table.name)])
        # Rows that look this one up name it by its key, which this change may have edited (a vendor's
        # account number): they read it again, rather than name it by its old key for the process's life.
        self._resolver.forget(table.name, row_id)
        row = await self._resolver.expand(table.table_map, raw)
        published = self._store.row_ref(_scope(table), row_id)
        if not table.takes(row):
            # The row left this map (a filter column changed: a contact no longer sellable): its record
            # goes on the other side, as the F&O producer publishes a row that left a map.
            if published is not None and self._leave(table, row, row_id, outbox, since):
                outbox.skipped_echo += 1
            return
        version = int(row["versionnumber"])
        try:
            key = table.key_of(row)
        except TransformError as exc:
            self._unkeyed(table, row_id, exc)
            return
        names = table.delete_data(row)
        if published is not None and (
            _key_changed(published.get("key"), key) or _names_changed(published.get("data"), names)
        ):
            # Its key changed (an account number edited), or what names it on the other side beyond that
            # key (a contact moved to another vendor: F&O keys vendor contacts by their vendor, Dataverse
            # does not): the record under the old name goes, and the row is created under the new one; the
            # F&O producer's scan does the same for a key it no longer finds. Else the old record stayed
            # on the other side for good.
            self._leave(table, row, row_id, outbox, since)
            published = None
        known = published is not None
        # A deleted entity carries its id only: keep what its delete must carry, as this event's data has it.
        ref = {"key": key, "version": version, "data": names}
        outbox.index.append((_scope(table), row_id, ref))
        if self._echo.is_echo(row):
            outbox.skipped_echo += 1
            return
        operation = Operation.UPDATE if known else Operation.CREATE
        moment = _change_time(row.get("modifiedon"), since)
        outbox.envelopes.append(build_envelope(table, row, operation, source_version=version, time=moment))

    def _leave(
        self, table: SourceTable, row: dict[str, Any], row_id: str, outbox: Outbox, since: datetime | None
    ) -> bool:
        """The record the row was published under goes: a delete, unless dualbus's own write moved it
        (then only its index entry goes, and True says so: the caller counts the echo once)."""
        if self._echo.is_echo(row):
            outbox.index.append((_scope(table), row_id, None))
            return True
        self._add_delete(table, row_id, outbox, since)
        return False

    def _unkeyed(self, table: SourceTable, row_id: str, error: TransformError) -> None:
        """A row the map cannot name on the other side (a key column empty, its company lookup unset) is not
        published, and the tables' other rows are: one such row stopped every table's polling, and again at
        each restart, as the delta that holds it was read again. Its next change, once keyed, publishes it.
        """
        self.unkeyed += 1
        self._publisher.metrics.unresolved.add(1, {"entity": table.name})
        _log.warning("%s row %s not published, as it has no key yet: %s", table.name, row_id, error)

    def _add_delete(self, table: SourceTable, row_id: str, outbox: Outbox, since: datetime | None) -> None:
        self._resolver.forget(table.name, row_id)
        ref = self._store.row_ref(_scope(table), row_id)
        if ref is None:
            # Never published (created and deleted between polls, or filtered out): nothing to undo.
            return
        outbox.index.append((_scope(table), row_id, None))
        # A tombstone carries no version: one above the last version published keeps per-record order
        # and gives a re-publish after a crash the same event id.
        version = int(ref["version"]) + 1
        # An entry written before deletes carried values has none: the delete then names the key only.
        known = ref.get("data") or {}
        moment = _change_time(None, since)
        envelope = build_envelope(
            table, known, Operation.DELETE, source_version=version, time=moment, key=ref["key"]
        )
        outbox.envelopes.append(envelope)

    async def _read_all(self, table: SourceTable) -> tuple[list[dict[str, Any]], str]:
        body = await self._get(table, {}, track=True)
        if body is None:
            raise SourceError(f"{table.name}: a new change-tracking snapshot was refused as expired")
        rows: list[dict[str, Any]] = list(body.get("value", []))
        while "@odata.nextLink" in body:
            body = await self._follow(table, str(body["@odata.nextLink"]), headers=_TRACK)
            rows.extend(body.get("value", []))
        return rows, _delta_token(body)

    async def _follow(
        self, table: SourceTable, link: str, *, headers: dict[str, str] | None
    ) -> dict[str, Any]:
        response = await self._retry.call(partial(self._api.request, "GET", link, headers=headers))
        return _json(table, response.status_code, response)

    async def _get(self, table: SourceTable, params: dict[str, str], *, track: bool) -> dict[str, Any] | None:
        query = {"$select": ",".join(select_columns(table)), **params}
        headers = _TRACK if track else None
        response = await self._retry.call(
            lambda: self._api.request("GET", table.name, params=query, headers=headers)
        )
        if response.status_code != _OK and EXPIRED_TOKEN_CODE in response.text:
            return None
        return _json(table, response.status_code, response)


_TRACK = {"Prefer": "odata.track-changes, odata.maxpagesize=5000"}


def _change_time(modified_on: object, since: datetime | None) -> datetime:
    """The earliest moment a change read from a delta can have been made: its event time.

    ``modifiedon`` has whole seconds (``2024-05-01T12:30:00Z``), so it can be up to a second before the
    change; and a change a delta returns was made after the previous read of its table started (``since``),
    or that read would have returned it. The later of the two is the closer bound, and never after the
    change, so the latency measured from it is never understated. A deleted row has no ``modifiedon``: its
    time is ``since`` alone, or now when the table has not been read before (after a restart).
    """
    moment = parse_time(modified_on) if modified_on else None
    if moment is None or (since is not None and since > moment):
        moment = since
    return moment if moment is not None else datetime.now(UTC)


def _scope(table: SourceTable) -> str:
    # Per map, not per table: two maps read contacts (customer and vendor contact persons), and a row one
    # of them published must be deleted through that map only.
    return table.table_map.name


def _token_name(table: SourceTable) -> str:
    return f"dataverse.delta.{table.table_map.name}"


def _delta_token(body: dict[str, Any]) -> str:
    link = str(body.get("@odata.deltaLink", ""))
    tokens = parse_qs(urlsplit(link).query).get("$deltatoken")
    if not tokens:
        raise SourceError("the change-tracking answer carries no @odata.deltaLink")
    return tokens[0]


def _json(table: SourceTable, status: int, response: Response) -> dict[str, Any]:
    if status != _OK:
        raise SourceError(f"reading {table.name} failed: {error_message(response)}")
    body: dict[str, Any] = response.json()
    return body


def _names_changed(published: object, names: dict[str, object]) -> bool:
    """Whether the delete values a row was published with are not ``names`` (compared without case, as
    keys are). An index entry written before deletes carried values holds none: nothing to compare."""
    return bool(published) and isinstance(published, dict) and _folded(published) != _folded(names)


def _folded(values: dict[str, object]) -> str:
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode().casefold()


def _key_changed(published: object, key: dict[str, str | int]) -> bool:
    """Whether the key a row was published under is not ``key`` (compared without case, as the F&O
    producer compares keys: a company code read back in another case is the same record)."""
    return isinstance(published, dict) and key_text(published).casefold() != key_text(key).casefold()
