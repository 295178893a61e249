"""The Dataverse sink: upsert by alternate key with lookups bound, guarded by the version column and ETags.

- Upsert by alternate key (``PATCH set(key=…)``), ``If-Match`` / ``If-None-Match: *``:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
- Lookups with ``@odata.bind``:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
- Optimistic concurrency (412 on a stale ETag):
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from consumers._batch import BatchingApi, Requester
from consumers._sink import ApplyResult, RowMarks, TargetChange, differing, guard
from shared.api import error_message
from shared.errors import LookupUnresolvedError, PermanentError, TransientError
from shared.maps import LookupBinding, Scalar, TableMap, odata_literal

__all__ = ["API_ROOT", "VERSION_COLUMN", "DataverseSink"]

VERSION_COLUMN = "dualbus_sourceversion"
_MARKS = RowMarks(version=VERSION_COLUMN, modified_by="_modifiedby_value", modified_at="modifiedon")
# The Web API root under the org URL: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
API_ROOT = "api/data/v9.2"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ATTEMPTS = 3  # re-reads after a concurrent writer changed the row under us
_CACHE_LIMIT = 10_000
_NOT_FOUND = 404
_PRECONDITION_FAILED = 412
_CLIENT_ERROR = 400


class DataverseSink:
    """Applies changes to Dataverse tables through the Web API."""

    def __init__(self, api: Requester, *, writer_id: str | None = None, api_root: str = API_ROOT) -> None:
        """``api`` is based on the org URL; ``writer_id`` is dualbus's user id (learned if None)."""
        self._api = api
        self._root = api_root.strip("/")
        self.writer_id = writer_id
        self._ids: dict[tuple[str, tuple[tuple[str, Scalar], ...]], str] = {}
        self._written: dict[str, dict[str, Any]] = {}

    async def whoami(self) -> str | None:
        """Ask Dataverse who dualbus writes as (``WhoAmI``); None when the endpoint is not there."""
        response = await self._api.request("GET", f"{self._root}/WhoAmI")
        if response.status_code == httpx.codes.OK:
            self.writer_id = str(response.json().get("UserId") or "") or None
        return self.writer_id

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Upsert or delete one row; a concurrent writer makes it re-read and decide again."""
        path = await self._row_path(change.table_map, change.key)
        for attempt in range(_ATTEMPTS):
            # The row as dualbus last wrote it saves a read; its ETag makes a stale copy fail safely (412).
            cached = self._written.get(path) if attempt == 0 else None
            row = cached if cached is not None else await self._read(path)
            result = self._guard(change, row)
            if result is not None:
                return result
            done = await (self._delete(path, row) if change.delete else self._upsert(path, change, row))
            if done is not None:
                return done
        raise TransientError(f"{path} kept changing under concurrent writers; will retry")

    async def aclose(self) -> None:
        """Let a batch in flight finish; the HTTP client itself belongs to the caller."""
        if isinstance(self._api, BatchingApi):
            await self._api.aclose()

    def _guard(self, change: TargetChange, row: Mapping[str, Any] | None) -> ApplyResult | None:
        return guard(change, row, _MARKS, self.writer_id)

    async def _upsert(
        self, path: str, change: TargetChange, row: Mapping[str, Any] | None
    ) -> ApplyResult | None:
        # An existing row is addressed by its key in the URL: its key columns never change.
        fields = {k: v for k, v in change.fields.items() if row is None or k not in change.key}
        body: dict[str, object] = dict(differing(row or {}, fields))
        for binding in change.lookups:
            await self._bind(change.table_map, binding, row, body)
        body[VERSION_COLUMN] = change.source_version
        # A new row must not overwrite one created meanwhile; an existing one must not have moved on.
        condition = {"If-Match": str(row["@odata.etag"])} if row else {"If-None-Match": "*"}
        headers = {**condition, "Prefer": "return=representation"}
        response = await self._api.request("PATCH", path, json=body, headers=headers)
        # 412: someone wrote first; 404 on an existing row: it was deleted meanwhile. Read again.
        if response.status_code == _PRECONDITION_FAILED or (response.status_code == _NOT_FOUND and row):
            self._written.pop(path, None)
            return None
        self._check(response, change.table_map)
        self._learn_writer(response)
        self._remember(path, response)
        return ApplyResult.APPLIED

    async def _delete(self, path: str, row: Mapping[str, Any] | None) -> ApplyResult | None:
        self._written.pop(path, None)
        headers = {"If-Match": str(row["@odata.etag"])} if row and "@odata.etag" in row else {}
        response = await self._api.request("DELETE", path, headers=headers)
        if response.status_code == _NOT_FOUND:
            return ApplyResult.UNCHANGED
        if response.status_code == _PRECONDITION_FAILED:
            return None
        self._check(response, None)
        return ApplyResult.APPLIED

    async def _bind(
        self,
        table_map: TableMap,
        binding: LookupBinding,
        row: Mapping[str, Any] | None,
        body: dict[str, object],
    ) -> None:
        name = f"{binding.navigation}@odata.bind"
        if binding.key is None:
            if row is None or row.get(f"_{binding.navigation}_value") is not None:
                body[name] = None
            return
        guid = await self._resolve(table_map, binding.navigation, binding.table, binding.key)
        if row is None or row.get(f"_{binding.navigation}_value") != guid:
            body[name] = f"/{binding.table}({guid})"

    async def _row_path(self, table_map: TableMap, key: Mapping[str, Scalar]) -> str:
        segment = await self._key_segment(table_map, table_map.dataverse_table, key)
        return f"{self._root}/{table_map.dataverse_table}({segment})"

    async def _key_segment(self, table_map: TableMap, table: str, key: Mapping[str, Scalar]) -> str:
        parts = []
        for column, value in key.items():
            lookup = table_map.lookup(column)
            if lookup is None or lookup.target_table == table:
                parts.append(f"{column}={_literal(value)}")
                continue
            # A lookup inside an alternate key (the company of a company-striped row) is addressed by the
            # referenced row's id; the maps name it the same way on every company-striped table.
            guid = await self._resolve(
                table_map, column, lookup.target_table, {next(iter(lookup.key)): value}
            )
            parts.append(f"{column}={guid}")
        return ",".join(parts)

    async def _resolve(
        self, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> str:
        cache_key = (table, tuple(sorted(key.items())))
        if cache_key in self._ids:
            return self._ids[cache_key]
        segment = await self._key_segment(table_map, table, key)
        row = await self._read(f"{self._root}/{table}({segment})")
        guid = _primary_id(row) if row else None
        if guid is None:
            raise LookupUnresolvedError(
                f"no {table} row with {dict(key)}", map_name=table_map.name, field=navigation
            )
        if len(self._ids) >= _CACHE_LIMIT:
            self._ids.clear()
        self._ids[cache_key] = guid
        return guid

    async def _read(self, path: str) -> dict[str, Any] | None:
        response = await self._api.request("GET", path)
        if response.status_code == _NOT_FOUND:
            return None
        self._check(response, None)
        body = response.json()
        return body if isinstance(body, dict) else None

    def _remember(self, path: str, response: httpx.Response) -> None:
        row = response.json() if response.content else None
        if not isinstance(row, dict) or "@odata.etag" not in row:
            self._written.pop(path, None)
            return
        if len(self._written) >= _CACHE_LIMIT:
            self._written.clear()
        self._written[path] = row

    def _learn_writer(self, response: httpx.Response) -> None:
        if self.writer_id is None and response.content:
            writer = response.json().get("_modifiedby_value")
            self.writer_id = str(writer) if writer else None

    @staticmethod
    def _check(response: httpx.Response, table_map: TableMap | None) -> None:
        if response.status_code >= _CLIENT_ERROR:
            where = f" (map {table_map.name!r})" if table_map else ""
            raise PermanentError(
                f"Dataverse rejected {response.request.method} {response.request.url.path}{where}: "
                f"{response.status_code} {error_message(response)}",
                reason="TargetRejected",
            )


def _literal(value: Scalar) -> str:
    # Quotes, '=' and ',' are key syntax; the rest that is not URL-safe (space, '/', '#') gets encoded.
    return quote(odata_literal(value), safe="'=,")


def _primary_id(row: Mapping[str, Any]) -> str | None:
    """A row's primary id: the GUID-valued ``…id`` column (lookup values read as ``_…_value``)."""
    for column, value in row.items():
        is_id = column.endswith("id") and not column.startswith("_")
        if is_id and isinstance(value, str) and _GUID.match(value):
            return value
    return None
