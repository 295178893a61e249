"""Addressing Dataverse rows by alternate key, where a key part or a bound lookup needs a row's GUID.

A lookup column inside an alternate key is written as its lookup property with the referenced row's id,
``accounts(_msdyn_company_value=<guid>,accountnumber='C-1')``, and a lookup is set with ``@odata.bind``:
https://github.com/MicrosoftDocs/powerapps-docs/blob/e40bbeb49bf84637609038b88caab9082ef6acd6/powerapps-docs/developer/data-platform/use-alternate-key-reference-record.md
A map names a lookup by its navigation property (``msdyn_CompanyId``); its value reads back under its
column's logical name (``_msdyn_companyid_value``), which the published table schema (``d365``) gives.

A row whose alternate key holds a text value with one of ``/ < > * % & : \\ ? +`` cannot be read or upserted
by that key ("then retrieve (GET), update, or upsert (PATCH) actions don't work"):
https://github.com/MicrosoftDocs/powerapps-docs/blob/0e238130235c2d24930f4bb6315503a4f3afdc4c/powerapps-docs/developer/data-platform/define-alternate-keys-entity.md
Such a row is found by a query on its key columns instead, and addressed by its id; one not there yet gets
an id made from its table and key (the same every time, so a create retried after a lost answer, or sent
again by the record's next holder, finds the row it made), and is created with it, as the Web API upserts
by primary key: ``PATCH accounts(<id>)`` with ``If-None-Match: *``:
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/webapi/update-delete-entities-using-web-api.md
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any, NamedTuple
from urllib.parse import quote
from uuid import UUID, uuid5

import orjson

from dualbus.consumers._batch import Requester
from dualbus.d365 import dataverse_tables, lookup_value_column
from dualbus.shared.api import error_message
from dualbus.shared.errors import (
    DualbusError,
    LookupMissingError,
    PermanentError,
    TransformError,
    TransientError,
)
from dualbus.shared.http import Response
from dualbus.shared.maps import LookupBinding, Scalar, TableMap, dataverse_key_literal

__all__ = ["KeyLookup", "References", "addressable", "check", "key_lookup", "lookup_column", "made_id"]

# Ids of referenced rows kept, the least recently used going first past it: a company's id, wanted by nearly
# every change, stays while the accounts a busy consumer's contacts point at come and go.
_CACHE_LIMIT = 10_000
# How long a row found missing by ``References.resolving`` is taken as missing without a read (the bind of the
# same change comes a turn later), and how many such rows are kept at most.
_MISS_SECONDS = 1.0
_MISSES_KEPT = 1_000
# A key as its segment spells it: (column, literal) per part (``References._key_terms``).
KeyTerms = list[tuple[str, str]]
# A referenced row as the id cache knows it: its table and its key's parts, in order.
_Ref = tuple[str, tuple[tuple[str, Scalar], ...]]
# Characters an alternate key's text value cannot hold for a row to be read or upserted by it (module notes).
_UNADDRESSABLE = frozenset("/<>*%&:\\?+")
# The namespace of the ids ``made_id`` gives (uuid5): fixed, so that every process makes the same one.
_MADE_IDS = UUID("5b0e2f7c-1d4a-5c39-9a61-7e3d2b8f4c10")
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
        self._ids: OrderedDict[_Ref, str] = OrderedDict()
        # Reads of an id under way, shared by every change that wants that id meanwhile.
        self._reading: dict[_Ref, asyncio.Task[str]] = {}
        # Rows just found missing by ``resolving``, with when: the bind right after raises, not reads again.
        self._missed: dict[_Ref, tuple[float, LookupMissingError]] = {}
        self._closed = False

    async def aclose(self) -> None:
        """Stop the reads of ids under way; asked once the last change is done (no read starts after)."""
        self._closed = True
        reading = list(self._reading.values())
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)

    async def row_path(self, table_map: TableMap, key: Mapping[str, Scalar]) -> str:
        """The path of the map's Dataverse row with natural key ``key``: by that key, or by the row's id
        when the key cannot address it (see the module's notes)."""
        table = table_map.dataverse_table
        terms = await self._key_terms(table_map, table, key)
        if addressable(terms):
            return f"{self._root}/{table}({_segment(terms)})"
        # Not cached: a row found by query may be deleted and made again under another id meanwhile.
        found = await self._query_id(table, terms, table_map)
        return f"{self._root}/{table}({found or made_id(table, key)})"

    async def bind(
        self, table_map: TableMap, binding: LookupBinding, row: Mapping[str, Any] | None
    ) -> dict[str, object]:
        """The ``<navigation>@odata.bind`` entry that sets ``binding``; empty when the row holds it."""
        column = lookup_column(table_map.dataverse_table, binding.navigation) or binding.navigation
        current = row.get(lookup_value_column(column)) if row is not None else None
        name = f"{binding.navigation}@odata.bind"
        if binding.key is None:
            return {name: None} if row is None or current is not None else {}
        # Found missing by ``resolving`` a moment ago, for this very change: not read a second time. Only
        # here: a key's lookup (``row_path``) is always read, since a delete takes a missing one for no row.
        missed = self._missed.pop(_ref(binding.table, binding.key), None)
        if missed is not None and time.monotonic() - missed[0] < _MISS_SECONDS:
            raise missed[1]
        guid = await self._resolve(table_map, binding.navigation, binding.table, binding.key)
        if row is not None and str(current or "").lower() == guid.lower():
            return {}
        return {name: f"/{binding.table}({guid})"}

    def resolving(self, table_map: TableMap, lookups: Sequence[LookupBinding]) -> list[Awaitable[None]]:
        """Reads of the ids ``lookups`` refer to that are not known yet, to be awaited beside the row's own.

        Awaited together (one ``asyncio.gather``), they are all issued in the same turn of the event loop
        and travel in one ``$batch`` rather than one after another: each batch waits for its turn of the
        consumer's pace (a fifth of a second by default), and a change whose row and three lookups were
        read in turn took four. A read that fails here is asked again by ``bind``, which raises its error
        where it did before.
        """
        wanted: dict[_Ref, tuple[str, str, Mapping[str, Scalar]]] = {}
        for binding in lookups:
            if binding.key is not None:
                cache_key = _ref(binding.table, binding.key)
                if cache_key not in self._ids:
                    wanted[cache_key] = (binding.navigation, binding.table, binding.key)
        return [self._resolved_quietly(table_map, *reference) for reference in wanted.values()]

    async def _resolved_quietly(
        self, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> None:
        try:
            await self._resolve(table_map, navigation, table, key)
        except LookupMissingError as exc:
            # Raised by bind when it asks for the id right after, instead of a second read of a row just
            # found missing; remembered briefly, since the row may be made any moment.
            self._remember_miss(_ref(table, key), exc)
        except DualbusError:
            pass  # asked again by bind, which raises it

    def _remember_miss(self, ref: _Ref, exc: LookupMissingError) -> None:
        """Keep the miss, newest last; first let go the misses too old to be used and, past
        ``_MISSES_KEPT``, the oldest: a miss let go costs its bind one read more, nothing else."""
        now = time.monotonic()
        self._missed.pop(ref, None)  # moved to the end: the misses stay in the order they were found
        while self._missed:
            oldest, (when, _) = next(iter(self._missed.items()))
            if now - when < _MISS_SECONDS and len(self._missed) < _MISSES_KEPT:
                break
            del self._missed[oldest]
        self._missed[ref] = (now, exc)

    async def refreshed(
        self, table_map: TableMap, key: Mapping[str, Scalar], lookups: Sequence[LookupBinding]
    ) -> bool:
        """Read again the cached ids of the rows a change's key and lookups refer to; True when one changed.

        Asked when a write answered 404: a referenced row deleted and re-created (a customer group, a
        company) has a new id, and every write that used the old one is answered 404 (ObjectDoesNotExist)
        until the id is read again. A referenced row now missing raises LookupMissingError, as a first read
        does.
        """
        # The ids held stay in use until the new ones are read: taken out first, every change meanwhile read
        # them again on its own, one turn of the pace before its row (a missing row's delete in a busy
        # consumer did this to its company's id every few changes). All are read at once: one turn.
        held = {
            cache_key: (navigation, table, reference)
            for navigation, table, reference in self._references(table_map, key, lookups)
            if (cache_key := _ref(table, reference)) in self._ids
        }
        old = {cache_key: self._ids[cache_key] for cache_key in held}
        # Started here, not inside gather's tasks: they are then issued in the same turn as the row's read.
        reads = [self._started_read(cache_key, table_map, *read) for cache_key, read in held.items()]
        fresh = await asyncio.gather(*(asyncio.shield(read) for read in reads), return_exceptions=True)
        changed = False
        for cache_key, answer in zip(held, fresh, strict=True):
            if isinstance(answer, LookupMissingError):
                self._ids.pop(cache_key, None)
            if isinstance(answer, BaseException):
                raise answer
            changed |= answer.lower() != old[cache_key].lower()
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

    async def _key_terms(self, table_map: TableMap, table: str, key: Mapping[str, Scalar]) -> KeyTerms:
        """Each key part as (column, literal): a lookup part as its value column and the referenced id."""
        terms = []
        for name, value in key.items():
            lookup = key_lookup(table, name)
            if lookup is None:
                terms.append((name, dataverse_key_literal(table, name, value)))
                continue
            guid = await self._resolve(table_map, name, lookup.target, {lookup.target_key: value})
            terms.append((lookup_value_column(lookup.column), guid))
        return terms

    async def _resolve(
        self, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> str:
        cache_key = _ref(table, key)
        held = self._ids.get(cache_key)
        if held is not None:
            self._ids.move_to_end(cache_key)
            return held
        return await self._read_once(cache_key, table_map, navigation, table, key)

    async def _read_once(
        self, cache_key: _Ref, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> str:
        """Read an id and keep it, joining a read of it already under way: after a start, or a new id,
        every record of a session wants its company's id at the same moment."""
        # Shielded: a change that gives up (its session lost) does not cancel the read the others wait for.
        return await asyncio.shield(self._started_read(cache_key, table_map, navigation, table, key))

    def _started_read(
        self, cache_key: _Ref, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> asyncio.Task[str]:
        """The read of an id under way, started now if there is none."""
        if self._closed:
            raise TransientError("the Dataverse sink is closed")
        reading = self._reading.get(cache_key)
        if reading is None:
            reading = asyncio.ensure_future(self._read_and_keep(cache_key, table_map, navigation, table, key))
            self._reading[cache_key] = reading
            reading.add_done_callback(lambda done: self._read_ended(cache_key, done))
        return reading

    async def _read_and_keep(
        self, cache_key: _Ref, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> str:
        guid = await self._read_id(table_map, navigation, table, key)
        self._ids[cache_key] = guid
        self._ids.move_to_end(cache_key)
        if len(self._ids) > _CACHE_LIMIT:
            self._ids.popitem(last=False)
        return guid

    def _read_ended(self, cache_key: _Ref, done: asyncio.Task[str]) -> None:
        if self._reading.get(cache_key) is done:
            del self._reading[cache_key]
        if not done.cancelled():
            done.exception()  # taken, so that a failed read whose waiters all gave up is not reported

    async def _read_id(
        self, table_map: TableMap, navigation: str, table: str, key: Mapping[str, Scalar]
    ) -> str:
        terms = await self._key_terms(table_map, table, key)
        if addressable(terms):
            guid = await self._keyed_id(table, terms, table_map)
        else:
            guid = await self._query_id(table, terms, table_map)
        if not guid:
            raise LookupMissingError(
                f"no {table} row with {dict(key)}", map_name=table_map.name, field=navigation
            )
        return str(guid)

    async def _keyed_id(self, table: str, terms: KeyTerms, table_map: TableMap) -> str | None:
        primary = dataverse_tables()[table].primary_id
        path = f"{self._root}/{table}({_segment(terms)})"
        response = await self._api.request("GET", path, params={"$select": primary})
        if response.status_code == _NOT_FOUND:
            return None
        check(response, table_map)
        guid = response.json().get(primary)
        return str(guid) if guid else None

    async def _query_id(self, table: str, terms: KeyTerms, table_map: TableMap) -> str | None:
        """The id of the row whose key ``terms`` spell, found by a query on its key columns (None: none)."""
        primary = dataverse_tables()[table].primary_id
        params = {
            "$select": primary,
            "$filter": " and ".join(f"{column} eq {literal}" for column, literal in terms),
        }
        response = await self._api.request("GET", f"{self._root}/{table}", params=params)
        check(response, table_map)
        rows = response.json().get("value")
        # An alternate key names one row at most.
        guid = rows[0].get(primary) if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None
        return str(guid) if guid else None


def _ref(table: str, key: Mapping[str, Scalar]) -> _Ref:
    """How the id cache names the row of ``table`` with ``key`` (its parts in order)."""
    return table, tuple(sorted(key.items()))


def addressable(terms: KeyTerms) -> bool:
    """Whether the Web API can read and upsert a row by the key ``terms`` spell: no text value (a quoted
    literal; a lookup's id and a date and time are written bare) holds a character it cannot take (see the
    module's notes)."""
    return not any(literal.startswith("'") and not _UNADDRESSABLE.isdisjoint(literal) for _, literal in terms)


def _segment(terms: KeyTerms) -> str:
    # Quotes, '=' and ',' are key syntax; the rest of a literal that is not URL-safe gets encoded.
    return ",".join(f"{column}={quote(literal, safe=_KEY_SAFE)}" for column, literal in terms)


def made_id(table: str, key: Mapping[str, Scalar]) -> UUID:
    """The id a row not addressable by its key is created with: the same for the same table and key."""
    return uuid5(_MADE_IDS, orjson.dumps([table, sorted(key.items())]).decode())


def check(response: Response, table_map: TableMap | None) -> None:
    """Raise PermanentError (reason TargetRejected) for a 4xx answer the caller has no use for."""
    if response.status_code >= _CLIENT_ERROR:
        where = f" (map {table_map.name!r})" if table_map else ""
        raise PermanentError(
            f"Dataverse rejected {response.request.method} {response.request.url.path}{where}: "
            f"{response.status_code} {error_message(response)}",
            reason="TargetRejected",
        )
