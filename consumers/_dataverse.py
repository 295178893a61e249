"""The Dataverse sink: upsert by alternate key with lookups bound, guarded by versions, writers and ETags.

- Upsert by alternate key (``PATCH set(key=…)``), ``If-Match`` / ``If-None-Match: *``:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
  (by the row's id where the key cannot address it: ``consumers._dataverse_refs``)
- Lookups with ``@odata.bind``:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
- Optimistic concurrency (412 on a stale ETag):
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
- A row is read, and a write answered with its representation, with ``$select`` of the columns a decision
  reads (a real account has some 250 columns, every one answered without it); an update that returns data
  takes ``$select`` too ("Update and retrieve records in a single operation"):
  https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/webapi/update-delete-entities-using-web-api.md
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Any

import orjson

from dualbus.consumers._batch import BatchingApi, Requester
from dualbus.consumers._dataverse_refs import References, check, lookup_column
from dualbus.consumers._sink import ApplyResult, ContendedError, TargetChange, differing, skip_reason
from dualbus.consumers._writer import WriterIdentity
from dualbus.d365 import DATAVERSE_VERSION_COLUMN, lookup_value_column
from dualbus.shared.errors import DualbusError, LookupMissingError, TransientError
from dualbus.shared.http import Response
from dualbus.shared.maps import passes_source_filter
from dualbus.shared.retry import RetryPolicy

__all__ = ["API_ROOT", "VERSION_COLUMN", "DataverseSink", "unseen_edit"]

VERSION_COLUMN = DATAVERSE_VERSION_COLUMN
# The Web API root under the org URL: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
API_ROOT = "api/data/v9.2"
_MODIFIED_BY = lookup_value_column("modifiedby")
_ROW_VERSION = "versionnumber"
_ATTEMPTS = 3  # re-reads after a concurrent writer changed the row under us
_START_ATTEMPTS = 4
# Rows dualbus wrote last, kept to save the read before a record's next change. A row not kept costs that
# one read and decides nothing differently (a kept copy gone stale fails its If-Match with 412 and is read
# again), so the bound is safe; past it the least recently written goes, one at a time, and the memory stays
# flat at the bound. A row is kept as the bytes the service answered (about a third of its parsed size) and
# parsed only when its record changes again, which an initial sync's records never do.
_CACHE_LIMIT = 10_000
_NOT_FOUND = 404
_PRECONDITION_FAILED = 412
# Rows of a table are created without a read first once this share of the last reads found them missing:
# a table being filled (an initial sync); live updates find their rows and keep reading first.
_ABSENCE_WINDOW = 32
_ABSENCE_SHARE = 0.9


class DataverseSink:
    """Applies F&O changes to Dataverse tables through the Web API; a Dataverse edit F&O has not seen wins.

    Conflict rule ("Dataverse wins", no clocks): a change is skipped as SKIPPED_CONFLICT when the row was
    last modified by someone other than dualbus and its ``versionnumber`` is greater than the change's
    ``base_version`` (the Dataverse version the F&O row had last received). That edit was made after
    anything F&O has seen; it is on its way to F&O, where it is applied over the F&O change. With
    ``base_version`` unknown (None), and for a reconcile repair, the change is applied.
    """

    def __init__(self, api: Requester, *, writer_id: str | None = None, api_root: str = API_ROOT) -> None:
        """``api`` is based on the org URL (batched or not); ``writer_id`` is dualbus's user id if known."""
        self._api = api
        self._root = api_root.strip("/")
        # WhoAmI travels alone: a function call has no place among a batch's row requests.
        direct = api.unbatched if isinstance(api, BatchingApi) else api
        self.identity = WriterIdentity(direct, root=self._root, user_id=writer_id)
        self._refs = References(api, root=self._root)
        self._written: OrderedDict[str, bytes] = OrderedDict()
        # Per table map: whether its rows were mostly missing lately (see _created_first).
        self._absent: dict[str, _Absence] = {}

    @property
    def writer_id(self) -> str | None:
        """dualbus's Dataverse user id, None until WhoAmI has answered."""
        return self.identity.user_id

    async def start(self, *, policy: RetryPolicy | None = None) -> str | None:
        """Learn dualbus's user id before the first change, retrying transient failures a few times.

        Still unknown afterwards (Dataverse down at start-up), every ``apply`` asks again first and raises
        TransientError until Dataverse answers, so no change is applied without the conflict rule.
        """
        return await self.identity.learn(attempts=_START_ATTEMPTS, policy=policy)

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Upsert or delete one row unless it is stale, conflicting or already holds the change."""
        writer = await self.identity.require()
        try:
            path = await self._refs.row_path(change.table_map, change.key)
        except LookupMissingError:
            if change.delete:
                # A row keyed by a company (or another row) that is not there cannot be there either. A
                # consumer that had the company's id cached found it so; one that had not (a restart,
                # another replica) waited for the lookup and dead-lettered the delete.
                return ApplyResult.UNCHANGED
            raise
        select = selected_columns(change)
        # One $select for the row's reads and for the answers to its writes.
        query = {"$select": ",".join(select)}
        created = await self._created_first(path, change, query)
        if created is not None:
            return created
        for attempt in range(_ATTEMPTS):
            # The row as dualbus last wrote it saves a read: its ETag makes a write on a stale copy fail
            # (412). A decision not to write is taken on a fresh read only.
            cached = self._cached(path) if attempt == 0 else None
            if cached is not None and (_behind(cached, change) or not select.keys() <= cached.keys()):
                # Its ETag would only fail (412), or it lacks a column this change compares (written with
                # another change's $select), which would read as null: read at once.
                cached = None
            row = cached if cached is not None else await self._read_with_references(path, change, query)
            done = self._skip(change, row, writer)
            if done is None and change.delete and row is not None and await self._holds_another(change, row):
                done = ApplyResult.UNCHANGED
            if done is None:
                done = await (
                    self._delete(path, change, row)
                    if change.delete
                    else self._upsert(path, change, row, query, fresh=cached is None)
                )
            if done is not None and (cached is None or done is ApplyResult.APPLIED):
                return done
        raise ContendedError(f"{path} kept changing under concurrent writers; will retry")

    async def _read_with_references(
        self, path: str, change: TargetChange, query: dict[str, str]
    ) -> dict[str, Any] | None:
        """The row, read together with the ids its lookups need (``References.resolving``), or for a
        delete, with the ids its key and lookups hold read again: one turn of the batch's pace, not one
        for each read."""
        read = self._read(path, change.table_map.name, query)
        if not change.delete:
            row: dict[str, Any] | None
            row, *_ = await asyncio.gather(read, *self._refs.resolving(change.table_map, change.lookups))
            return row
        # A delete's row not found may be there under a company re-created with a new id, which the path was
        # built from (a company gone altogether leaves no row to delete). A row found needs no new id: what
        # failed in reading one again does not hold its delete back.
        found: dict[str, Any] | BaseException | None
        found, renewed = await asyncio.gather(read, self._renewal(change), return_exceptions=True)
        if isinstance(found, BaseException):
            raise found
        if isinstance(renewed, BaseException) and (found is None or not isinstance(renewed, DualbusError)):
            raise renewed
        if found is None and renewed is True:
            raise TransientError(f"a row {change.table_map.name} refers to has a new id; read again with it")
        return found

    async def _renewal(self, change: TargetChange) -> bool:
        """Whether a row the change refers to has a new id, read again now (False if it is gone)."""
        with contextlib.suppress(LookupMissingError):
            return await self._refs.refreshed(change.table_map, change.key, change.lookups)
        return False

    async def _created_first(
        self, path: str, change: TargetChange, query: dict[str, str]
    ) -> ApplyResult | None:
        """Create the row without reading it first, while this table's rows are mostly found missing.

        An initial sync into an empty table would otherwise read every row before creating it: the create
        is the very request the guarded path sends for a missing row (``If-None-Match: *``), so it saves the
        read and decides nothing differently. A row that exists answers 412, and the guarded path (read,
        compare, write) takes over. A missing row's tombstone is judged first, as the guarded path does.
        """
        absent = self._absent.setdefault(change.table_map.name, _Absence())
        if change.delete or path in self._written or not absent.likely:
            return None
        skipped = skip_reason(change, None, VERSION_COLUMN)
        if skipped is not None:
            return skipped
        await asyncio.gather(*self._refs.resolving(change.table_map, change.lookups))
        result = await self._upsert(path, change, None, query)
        absent.seen(missing=result is not None)
        return result

    async def aclose(self) -> None:
        """Let a batch in flight finish; the HTTP client itself belongs to the caller."""
        await self._refs.aclose()
        if isinstance(self._api, BatchingApi):
            await self._api.aclose()

    @staticmethod
    def _skip(change: TargetChange, row: Mapping[str, Any] | None, writer: str) -> ApplyResult | None:
        reason = skip_reason(change, row, VERSION_COLUMN)
        if (
            reason is None
            and change.delete
            and row is not None
            and not passes_source_filter(change.table_map, "dataverse", row)
        ):
            # Not this map's row, though it has the key: source filters do not apply to deletes, so an F&O
            # customer's delete comes to every map of the area, and contacts keyed alike (a vendor contact
            # whose contact person id is that customer's account number) were deleted with it.
            return ApplyResult.UNCHANGED
        if reason is None and row is not None and unseen_edit(change, row, writer):
            return ApplyResult.SKIPPED_CONFLICT
        return reason

    async def _holds_another(self, change: TargetChange, row: Mapping[str, Any]) -> bool:
        """Whether the row an F&O delete names is another record now: it holds another value than the
        delete's key gave it (``TargetChange.fields`` and ``lookups`` of a delete).

        F&O keys a vendor contact by its vendor, Dataverse does not: a contact moved to another vendor in
        F&O keeps its Dataverse row, which the delete of it under its old vendor (F&O's scan finds that key
        gone later, with a newer version) removed. A value the row does not hold (null, a lookup to a row
        that cannot be read) says nothing, and the row is deleted as before.
        """
        for name, value in change.fields.items():
            held = row.get(name)
            if name not in change.key and None not in (held, value) and _folded(held) != _folded(value):
                return True
        table = change.table_map.dataverse_table
        for binding in change.lookups:
            column = lookup_value_column(lookup_column(table, binding.navigation) or binding.navigation)
            if row.get(column) is None or binding.key is None:
                continue
            with contextlib.suppress(LookupMissingError):
                if await self._refs.bind(change.table_map, binding, row):
                    # The id known for the delete's row may be an old one (that row deleted and made again,
                    # the contact bound to the new one): read it again before the delete is left undone.
                    await self._refs.refreshed(change.table_map, {}, (binding,))
                    if await self._refs.bind(change.table_map, binding, row):
                        return True
        return False

    async def _upsert(
        self,
        path: str,
        change: TargetChange,
        row: Mapping[str, Any] | None,
        query: dict[str, str],
        *,
        fresh: bool = True,
    ) -> ApplyResult | None:
        # An existing row is addressed by its key in the URL: its key columns never change.
        fields = {k: v for k, v in change.fields.items() if row is None or k not in change.key}
        # F&O holds no null: its "no value" of a field (a credit limit's 0, on-hold "No") is what Dataverse
        # holds as null, so an existing row's null stays (docs/processing.md, "Empty values"). Without this,
        # the F&O state dualbus's own write of a Dataverse null produced came back and replaced the null.
        nulls = change.table_map.no_values_towards("dataverse") if row is not None else None
        body: dict[str, object] = dict(differing(row or {}, fields, nulls))
        if not fresh:
            # A kept copy saved the row's read; the ids its lookups need are still read at once.
            await asyncio.gather(*self._refs.resolving(change.table_map, change.lookups))
        for binding in change.lookups:
            body.update(await self._refs.bind(change.table_map, binding, row))
        mark_only = row is not None and not body
        # A mark is raised on a row just read only: "unchanged" on a kept copy is decided again on a read.
        if mark_only and not (fresh and _mark_lags(change, row, self.writer_id or "")):
            # Writing the same values would only raise a change that travels back to F&O as an echo.
            return ApplyResult.UNCHANGED
        if row is not None:
            await change.updating()
        body[VERSION_COLUMN] = change.source_version
        # A new row must not overwrite one created meanwhile; an existing one must not have moved on.
        condition = {"If-Match": str(row["@odata.etag"])} if row else {"If-None-Match": "*"}
        headers = {**condition, "Prefer": "return=representation"}
        response = await self._api.request("PATCH", path, json=body, headers=headers, params=query)
        await self._stale_reference(response, change, path, body)
        # 412: someone wrote first; 404 on an existing row: it was deleted meanwhile. Read again.
        if response.status_code == _PRECONDITION_FAILED or (response.status_code == _NOT_FOUND and row):
            return None
        check(response, change.table_map)
        self._remember(path, response)
        return ApplyResult.UNCHANGED if mark_only else ApplyResult.APPLIED

    async def _delete(
        self, path: str, change: TargetChange, row: Mapping[str, Any] | None
    ) -> ApplyResult | None:
        headers = {"If-Match": str(row["@odata.etag"])} if row and "@odata.etag" in row else {}
        response = await self._api.request("DELETE", path, headers=headers)
        # A row it refers to that is gone now (its company deleted): no row can be addressed through it.
        with contextlib.suppress(LookupMissingError):
            await self._stale_reference(response, change, path)
        if response.status_code == _NOT_FOUND:
            return ApplyResult.UNCHANGED
        if response.status_code == _PRECONDITION_FAILED:
            return None
        check(response, None)
        return ApplyResult.APPLIED

    async def _stale_reference(
        self, response: Response, change: TargetChange, path: str, body: Mapping[str, object] | None = None
    ) -> None:
        """TransientError when a 404 came from an id cached for a referenced row that has a new one now
        (deleted and re-created): the change goes again with the new id, instead of being taken for a row
        deleted meanwhile, or rejected.

        The ids the request went with are compared too: another change may have read the new id while this
        one was under way, and the id read again then equals the one cached, not the one sent.
        """
        if response.status_code != _NOT_FOUND:
            return
        await self._renewed_references(change)
        if await self._refs.row_path(change.table_map, change.key) != path or await self._rebound(
            change, body
        ):
            raise TransientError(
                f"{path} was written with an id replaced meanwhile; written again with the new"
            )

    async def _rebound(self, change: TargetChange, body: Mapping[str, object] | None) -> bool:
        """Whether a lookup the write set (``body``) binds another id now."""
        if not body:
            return False
        for binding in change.lookups:
            for name, value in (await self._refs.bind(change.table_map, binding, None)).items():
                if name in body and body[name] != value:
                    return True
        return False

    async def _renewed_references(self, change: TargetChange) -> None:
        """Read the ids of the rows the change refers to again; TransientError if one has a new id."""
        if await self._refs.refreshed(change.table_map, change.key, change.lookups):
            raise TransientError(
                f"a row {change.table_map.name} refers to has a new id; written again with it"
            )

    async def _read(self, path: str, table: str, query: dict[str, str]) -> dict[str, Any] | None:
        response = await self._api.request("GET", path, params=query)
        if table is not None:
            self._absent.setdefault(table, _Absence()).seen(missing=response.status_code == _NOT_FOUND)
        if response.status_code == _NOT_FOUND:
            return None
        check(response, None)
        body = response.json()
        return body if isinstance(body, dict) else None

    def _remember(self, path: str, response: Response) -> None:
        if b'"@odata.etag"' not in response.content:
            return
        self._written[path] = response.content
        self._written.move_to_end(path)
        if len(self._written) > _CACHE_LIMIT:
            self._written.popitem(last=False)

    def _cached(self, path: str) -> dict[str, Any] | None:
        """The row as dualbus last wrote it, taken out of the cache (a write keeps it again), or None."""
        content = self._written.pop(path, None)
        row = orjson.loads(content) if content is not None else None
        return row if isinstance(row, dict) and "@odata.etag" in row else None


class _Absence:
    """Whether the last reads and creates of one table found its rows missing, most of the time."""

    def __init__(self, window: int = _ABSENCE_WINDOW) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._missing = 0

    @property
    def likely(self) -> bool:
        """True once the window is full and at least ``_ABSENCE_SHARE`` of it found the row missing."""
        full = len(self._recent) == self._recent.maxlen
        return full and self._missing >= _ABSENCE_SHARE * len(self._recent)

    def seen(self, *, missing: bool) -> None:
        """Count one read (or create) that found the row missing or not."""
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._missing -= 1
        self._recent.append(missing)
        self._missing += missing


def _behind(row: Mapping[str, Any], change: TargetChange) -> bool:
    """Whether the copy kept of ``row`` is older than a version F&O has seen of it (``base_version``).

    Someone wrote the row after dualbus did, and F&O heard of it: that is how its own write comes back from
    F&O (an echo), and how an F&O edit made after a Dataverse edit comes. A write on the copy would fail its
    If-Match and cost a request before the read; ``versionnumber`` only grows, so the copy is stale.
    """
    held = _row_version(row)
    return change.base_version is not None and held is not None and held < change.base_version


def _folded(value: object) -> str:
    return str(value).casefold()


def selected_columns(change: TargetChange) -> dict[str, None]:
    """The columns a decision on ``change`` reads, in order (a dict as an ordered set): the fields it
    compares (an existing row's key columns are not), its lookups' value columns, dualbus's version column,
    and the modifier and row version the conflict rule reads."""
    table = change.table_map.dataverse_table
    compared = [name for name in change.fields if name not in change.key]
    bound = [lookup_value_column(lookup_column(table, b.navigation) or b.navigation) for b in change.lookups]
    # A delete reads the columns of the map's filter: it deletes only a row the map would take.
    filtered = [c.field for c in change.table_map.source_filter.dataverse] if change.delete else []
    return dict.fromkeys([*compared, *bound, *filtered, VERSION_COLUMN, _MODIFIED_BY, _ROW_VERSION])


def unseen_edit(change: TargetChange, row: Mapping[str, Any], writer_id: str) -> bool:
    """Whether ``row`` holds an edit by someone other than dualbus that F&O had not seen at the change.

    Also for deletes: a row edited in Dataverse after F&O last heard of it survives the F&O delete, and
    the edit, applied to F&O, re-creates the row there.
    """
    if change.base_version is None or change.repair:
        # A reconcile repair is the operator saying which side is right: it is not a concurrent edit.
        return False
    if str(row.get(_MODIFIED_BY) or "").lower() == writer_id.lower():
        return False
    held = _row_version(row)
    return held is not None and held > change.base_version


def _mark_lags(change: TargetChange, row: Mapping[str, Any] | None, writer_id: str) -> bool:
    """Whether a row that already holds the change's values needs its version mark raised to the change's.

    Where dualbus wrote the row last, an unchanged change newer than the mark (F&O back at values
    dualbus applied) is recorded, as the F&O sink records it: left at the older mark, an older change
    replayed from the dead-letter queue or delivered late passed the stale guard and overwrote the row.
    Not where F&O's state was built on this very row version (its base): that is F&O's echo of what it
    received, and nothing is written, which would only raise a change of its own. Nor where someone else
    edited the row last: a change with a base is then such an echo (else the conflict rule would have
    skipped it); one without (an initial sync's, a repair) is not written either, as before. A re-run
    initial sync over rows dualbus wrote last raises their marks: one write a row, as the F&O sink does.
    """
    if row is None:
        return False
    mark = row.get(VERSION_COLUMN)
    if mark is not None and int(str(mark)) >= change.source_version:
        return False
    if change.base_version is not None and change.base_version == _row_version(row):
        return False
    return bool(writer_id) and str(row.get(_MODIFIED_BY) or "").lower() == writer_id.lower()


def _row_version(row: Mapping[str, Any]) -> int | None:
    """The row's ``versionnumber``, raised on every write (OData writes an Int64 as text when the client
    asks for IEEE754Compatible)."""
    held = row.get(_ROW_VERSION)
    return None if held is None else int(str(held))
