"""Addressing Dataverse rows by alternate key, where a key part or a bound lookup needs a row's GUID.

A lookup column inside an alternate key is written as its lookup property with the referenced row's id,
``accounts(_msdyn_company_value=<guid>,accountnumber='C-1')``, and a lookup is set with ``@odata.bind``:
https://github.com/MicrosoftDocs/powerapps-docs/blob/e40bbeb49bf84637609038b88caab9082ef6acd6/powerapps-docs/developer/data-platform/use-alternate-key-reference-record.md
A map names a lookup by its navigation property (``msdyn_CompanyId``); its value reads back under its
column's logical name (``_msdyn_companyid_value``), which the published table schema (``d365``) gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any, NamedTuple
from urllib.parse import quote

from dualbus.consumers._batch import Requester
from dualbus.d365 import dataverse_tables, lookup_value_column
from dualbus.shared.api import error_message
from dualbus.shared.errors import LookupMissingError, PermanentError, TransformError
from dualbus.shared.http import Response
from dualbus.shared.maps import LookupBinding, Scalar, TableMap, dataverse_key_literal

__all__ = ["KeyLookup", "References", "check", "key_lookup", "lookup_column"]

_CACHE_LIMIT = 10_000
_KEY_SAFE = "'=,"
_NOT_FOUND = 404
_CLIENT_ERROR = 400


class KeyLookup(NamedTuple):
    """A key part that is a lookup: its column, the table it points at and that table's one-column key."""

    column: str
    target: str
    target_key: str


@cache  # the tables are fixed: asked for every key part and lookup of every change
def lookup_column(table: str, name: str) -> str | None:
    """The lookup column behind ``name`` (a navigation property or a lookup column) of ``table``."""
    schema = dataverse_tables().get(table)
    if schema is None:
        return None
    found = schema.navigation(name)
    if found is not None:
        return found[0]
    column = schema.columns.get(name)
    return name if column is not None and column.is_lookup else None


@cache
def key_lookup(table: str, name: str) -> KeyLookup | None:
    """How key part ``name`` of ``table`` is resolved when it is a lookup; None for a plain column."""
    tables = dataverse_tables()
    column = lookup_column(table, name)
    if column is None:
        return None
    targets = set(tables[table].columns[column].targets.values())
    target = tables.get(targets.pop()) if len(targets) == 1 else None
    keys = [key.columns[0] for key in target.alternate_keys if len(key.columns) == 1] if target else []
    if target is None or len(keys) != 1:
        raise TransformError(f"{table}'s key part {name!r} is not a lookup to a table with a one-column key")
    return KeyLookup(column, target.entity_set, keys[0])


class References:
    """Key segments and ``@odata.bind`` values of one Dataverse Web API, with referenced ids cached."""

    def __init__(self, api: Requester, *, root: str) -> None:
        """``root`` is the Web API path under the org URL (``api/data/v9.2``)."""
        self._api = api
        self._root = root.strip("/")
        self._ids: dict[tuple[str, tuple[tuple[str, Scalar], ...]], str] = {}

    async def row_path(self, table_map: TableMap, key: Mapping[str, Scalar]) -> str:
        """The path of the map's Dataverse row with natural key ``key``."""
        table = table_map.dataverse_table
        return f"{self._root}/{table}({await self._segment(table_map, table, key)})"

    async def bind(
        self, table_map: TableMap, binding: LookupBinding, row: Mapping[str, Any] | None
    ) -> dict[str, object]:
        """The ``<navigation>@odata.bind`` entry that sets ``binding``; empty when the row holds it."""
        column = lookup_column(table_map.dataverse_table, binding.navigation) or binding.navigation
        current = row.get(lookup_value_column(column)) if row is not None else None
        name = f"{binding.navigation}@odata.bind"
        if binding.key is None:
            return {name: None} if row is None or current is not None else {}
        guid = await self._resolve(table_map, binding.navigation, binding.table, binding.key)
        if row is not None and str(current or "").lower() == guid.lower():
            return {}
        return {name: f"/{binding.table}({guid})"}

    async def refreshed(
        self, table_map: TableMap, key: Mapping[str, Scalar], lookups: Sequence[LookupBinding]
    ) -> bool:
        """Read again the cached ids of the rows a change's key and lookups refer to; True when one changed.

        Asked when a write answered 404: a referenced row deleted and re-created (a customer group, a
        company) has a new id, and every write that used the old one is answered 404 (ObjectDoesNotExist)
        until the id is read again. A referenced row now missing raises LookupMissingError, as a first read
        does.
        """
        changed = False
        for navigation, table, reference in self._references(table_map, key, lookups):
            held = self._ids.pop((table, tuple(sorted(reference.items()))), None)
            if held is not None:
                fresh = await self._resolve(table_map, navigation, table, reference)
                changed |= fresh.lower() != held.lower()
        return changed

    @staticmethod
    def _references(
        table_map: TableMap, key: Mapping[str, Scalar], lookups: Sequence[LookupBinding]
    ) -> Iterator[tuple[str, str, Mapping[str, Scalar]]]:
        """(navigation, referenced table, its key) of each row a change's key and lookups refer to."""
        table = table_map.dataverse_table
        for name, value in key.items():
            lookup = key_lookup(table, name)
            if lookup is not None:
                yield name, lookup.target, {lookup.target_key: value}
        for binding in lookups:
            if binding.key is not None:
                yield binding.navigation, binding.table, binding.key

    async def _segment(self, table_map: TableMap, table: str, key: Mapping[str, Scalar]) -> str:
        parts = []
        for name, value in key.items():
            lookup = key_lookup(table, name)
            if lookup is None:
                # Quotes, '=' and ',' are key syntax; the rest that is not URL-safe gets encoded.
                parts.append(f"{name}={quote(dataverse_key_literal(table, name, value), safe=_KEY_SAFE)}")
                continue
            guid = await self._resolve(table_map, name, lookup.target, {lookup.target_key: value})
            parts.append(f"{lookup_value_column(lookup.column)}={guid}")
        return ",".join(parts)

    async def _resolve(
        self, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> str:
        cache_key = (table, tuple(sorted(key.items())))
        if cache_key not in self._ids:
            guid = await self._read_id(table_map, navigation, table, key)
            if len(self._ids) >= _CACHE_LIMIT:
                self._ids.clear()
            self._ids[cache_key] = guid
        return self._ids[cache_key]

    async def _read_id(
        self, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> str:
        primary = dataverse_tables()[table].primary_id
        path = f"{self._root}/{table}({await self._segment(table_map, table, key)})"
        response = await self._api.request("GET", path, params={"$select": primary})
        if response.status_code != _NOT_FOUND:
            check(response, table_map)
        guid = response.json().get(primary) if response.status_code != _NOT_FOUND else None
        if not guid:
            raise LookupMissingError(
                f"no {table} row with {dict(key)}", map_name=table_map.name, field=navigation
            )
        return str(guid)


def check(response: Response, table_map: TableMap | None) -> None:
    """Raise PermanentError (reason TargetRejected) for a 4xx answer the caller has no use for."""
    if response.status_code >= _CLIENT_ERROR:
        where = f" (map {table_map.name!r})" if table_map else ""
        raise PermanentError(
            f"Dataverse rejected {response.request.method} {response.request.url.path}{where}: "
            f"{response.status_code} {error_message(response)}",
            reason="TargetRejected",
        )
