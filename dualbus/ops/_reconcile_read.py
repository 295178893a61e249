"""Reading every row of one map's entity or table, page by page, through each system's OData API.

F&O: ``GET /data/{entity}?cross-company=true`` (company-specific entities answer only the caller's default
company without it); pages follow ``@odata.nextLink``.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata

Dataverse: ``GET {entity set}?$select=...`` with ``Prefer: odata.maxpagesize``; pages follow
``@odata.nextLink``, and lookups arrive as ``_x_value`` GUIDs that are resolved to the referenced rows'
natural keys (``producers.dv_lookups.LookupResolver``, cached per GUID).
See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dualbus.consumers import VERSION_COLUMN
from dualbus.producers.dv_lookups import LookupResolver, lookup_column, primary_id_column
from dualbus.shared.api import ApiClient, error_message
from dualbus.shared.errors import DualbusError
from dualbus.shared.http import Response
from dualbus.shared.maps import TableMap
from dualbus.shared.retry import RetryPolicy

__all__ = ["ReconcileError", "dataverse_columns", "read_dataverse", "read_fo"]

Page = list[dict[str, Any]]
_OK = 200
_SYSTEM_COLUMNS = ("versionnumber", "modifiedon", "_modifiedby_value", VERSION_COLUMN)
# A reconcile reads many pages: a throttled or failed page (TransientError) is asked again a few times,
# by the shared policy (Retry-After honoured up to its cap), rather than ending the whole run.
PAGE_RETRY = RetryPolicy(attempts=5, initial_wait=1.0)


class ReconcileError(DualbusError):
    """A system answered a reconcile read with something other than rows."""


def dataverse_columns(table_map: TableMap) -> list[str]:
    """The ``$select`` list: mapped columns, lookup ids, filter columns, id, version and dualbus's mark."""
    navigations = {lookup.dataverse for lookup in table_map.lookups}
    fields = [f.dataverse for f in table_map.fields if f.dataverse and f.dataverse not in navigations]
    lookups = [lookup_column(table_map.dataverse_table, name) for name in navigations]
    filters = [condition.field for condition in table_map.source_filter.dataverse]
    primary = primary_id_column(table_map.dataverse_table)
    return list(dict.fromkeys([*fields, *sorted(lookups), *filters, primary, *_SYSTEM_COLUMNS]))


async def read_fo(api: ApiClient, entity: str) -> AsyncIterator[Page]:
    """Every row of an F&O data entity across companies, one page at a time."""
    body = await _get(api, f"data/{entity}", {"cross-company": "true"}, None, what=entity)
    while True:
        yield list(body.get("value", []))
        link = body.get("@odata.nextLink")
        if not link:
            return
        body = await _get(api, str(link), None, None, what=entity)


async def read_dataverse(
    api: ApiClient, table_map: TableMap, resolver: LookupResolver, *, page_size: int = 5000
) -> AsyncIterator[Page]:
    """Every row of a Dataverse table, one page at a time, lookups expanded to natural keys."""
    table = table_map.dataverse_table
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    params = {"$select": ",".join(dataverse_columns(table_map))}
    body = await _get(api, table, params, headers, what=table)
    while True:
        yield [await resolver.expand(table_map, row) for row in body.get("value", [])]
        link = body.get("@odata.nextLink")
        if not link:
            return
        body = await _get(api, str(link), None, headers, what=table)


async def _get(
    api: ApiClient,
    path: str,
    params: dict[str, str] | None,
    headers: dict[str, str] | None,
    *,
    what: str,
) -> dict[str, Any]:
    response = await PAGE_RETRY.call(lambda: api.request("GET", path, params=params, headers=headers))
    return _rows(response, what)


def _rows(response: Response, what: str) -> dict[str, Any]:
    if response.status_code != _OK:
        raise ReconcileError(f"reading {what} failed: {error_message(response)}")
    try:
        body = response.json()
    except ValueError as exc:
        raise ReconcileError(f"reading {what} gave a body that is not JSON") from exc
    if not isinstance(body, dict):
        raise ReconcileError(f"reading {what} gave a JSON {type(body).__name__}, not an object")
    return body
