"""Reading Dataverse rows the way the maps expect them: columns to select, ids, lookups as natural keys.

A lookup reads as ``_x_value`` (the target row's GUID). Change tracking supports ``$select`` only, so the
GUID is resolved here to the target's alternate-key columns (``{"cdm_companycode": "USMF"}``), once per
GUID until that row's own change or delete is read (``LookupResolver.forget``): companies, currencies and
groups are few, but a key can be edited (a vendor's account number). Lookups of one GUID at the same moment
share one read.
See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api#lookup-property-data
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from typing import Any

from dualbus.d365 import dataverse_tables, lookup_value_column
from dualbus.producers.errors import SourceError
from dualbus.producers.tables import SourceTable
from dualbus.shared.api import ApiClient, error_message
from dualbus.shared.maps import LookupMap, TableMap

__all__ = ["LookupResolver", "lookup_column", "primary_id_column", "select_columns"]

_SYSTEM_COLUMNS = ("versionnumber", "modifiedon", "_modifiedby_value")
_OK = 200
_NOT_FOUND = 404


def lookup_column(entity_set: str, navigation: str) -> str:
    """The read-only property a lookup's GUID is read from: ``_<column>_value`` of the lookup's column.

    The column comes from the table's schema (``products``' ``msdyn_CompanyId`` sets ``msdyn_companyid``).
    """
    table = dataverse_tables().get(entity_set)
    found = table.navigation(navigation) if table is not None else None
    return lookup_value_column(found[0] if found is not None else navigation)


def primary_id_column(entity_set: str) -> str:
    """The primary id column of a table, from its schema (``accounts`` → ``accountid``)."""
    table = dataverse_tables().get(entity_set)
    if table is None:
        raise SourceError(f"Dataverse has no table {entity_set!r} in the schemas dualbus knows")
    return table.primary_id


def select_columns(table: SourceTable) -> list[str]:
    """The ``$select`` list of a table: carried fields, filter fields, id, version and modifier."""
    navigations = {lookup.dataverse for lookup in table.table_map.lookups}
    carried = [
        lookup_column(table.name, name) if name in navigations else name for name in table.carried_fields
    ]
    filters = [condition.field for condition in table.table_map.source_filter.dataverse]
    wanted = [*carried, *filters, primary_id_column(table.name), *_SYSTEM_COLUMNS]
    return list(dict.fromkeys(wanted))


class LookupResolver:
    """Turns lookup GUIDs into the target rows' natural keys, asking Dataverse once per GUID until the row
    is forgotten (it changed)."""

    def __init__(self, api: ApiClient, maps: Iterable[TableMap]) -> None:
        self._api = api
        self._maps = {m.dataverse_table: m for m in maps}
        self._cache: dict[tuple[str, str], dict[str, Any] | None] = {}
        # Reads under way: the rows of one page expanded side by side share one read of a GUID they all
        # look up (each used to send its own), and a read forgotten under way is not kept (see forget).
        self._reads: dict[tuple[str, str], asyncio.Future[dict[str, Any] | None]] = {}

    async def expand(self, table_map: TableMap, row: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``row`` where each lookup's navigation property holds its target's natural key."""
        expanded = dict(row)
        for lookup in table_map.lookups:
            column = lookup_column(table_map.dataverse_table, lookup.dataverse)
            if column not in row:
                continue
            guid = row[column]
            expanded[lookup.dataverse] = None if guid is None else await self.resolve(lookup, str(guid))
        return expanded

    def forget(self, entity_set: str, guid: str) -> None:
        """Read the row again when next looked up: it changed (its key may have), or it is gone.

        A read under way may have been answered before the change: its answer still goes to the lookups
        waiting for it, but is not kept, or it would stand for the row until the row's next change.
        """
        self._cache.pop((entity_set, guid), None)
        self._reads.pop((entity_set, guid), None)

    async def resolve(self, lookup: LookupMap, guid: str) -> dict[str, Any] | None:
        """The natural-key columns of the row a lookup points at, or None when that row is gone."""
        cached = (lookup.target_table, guid)
        if cached in self._cache:
            return self._cache[cached]
        reading = self._reads.get(cached)
        if reading is None:
            reading = self._reads[cached] = asyncio.ensure_future(self._read(lookup, guid))
            reading.add_done_callback(partial(self._read_done, cached))
        # One caller cancelled (its page given up) leaves the read to the others waiting for it.
        return await asyncio.shield(reading)

    def _read_done(self, cached: tuple[str, str], reading: asyncio.Future[dict[str, Any] | None]) -> None:
        # A failed read is kept by no one: its waiters raise its error and the next lookup reads again.
        # (Its error is taken here, so that one whose waiters all went is not reported as never retrieved.)
        failed = reading.cancelled() or reading.exception() is not None
        if self._reads.get(cached) is not reading:
            return  # forgotten while it was read
        del self._reads[cached]
        if not failed:
            self._cache[cached] = reading.result()

    async def _read(self, lookup: LookupMap, guid: str) -> dict[str, Any] | None:
        columns = self._plain_key_columns(lookup)
        path = f"{lookup.target_table}({guid})"
        response = await self._api.request("GET", path, params={"$select": ",".join(columns)})
        if response.status_code == _NOT_FOUND:
            return None
        if response.status_code != _OK:
            raise SourceError(f"cannot read {path}: {error_message(response)}")
        body = response.json()
        return {column: body.get(column) for column in columns}

    def _plain_key_columns(self, lookup: LookupMap) -> list[str]:
        # A key column that is itself a lookup (a group's company) is left out: the maps skip it. The
        # target's schema says which columns are lookups, whichever area's maps this producer runs.
        target = dataverse_tables().get(lookup.target_table)
        columns = target.columns if target is not None else {}
        return [c for c in lookup.key if not (c in columns and columns[c].is_lookup)]
