"""GET: one row, a queried and paged collection, and change tracking with delta links.

- Query options and paging (``Prefer: odata.maxpagesize``, ``@odata.nextLink``):
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query-data-web-api
- ``$count=true`` counts the matching rows up to 5,000; ``Prefer: odata.include-annotations`` naming
  ``Microsoft.Dynamics.CRM.totalrecordcount`` and ``...totalrecordcountlimitexceeded`` (or a pattern such as
  ``*`` that covers them) adds both annotations, the count -1 without ``$count=true`` ("Count rows using
  OData", https://github.com/MicrosoftDocs/powerapps-docs/blob/09d2ca01442806eab093e2143c2a5148c1c7738f/
  powerapps-docs/developer/data-platform/webapi/query/count-rows.md)
- Conditional retrieval: a row read with ``If-None-Match`` naming its current ETag is answered 304 Not
  Modified, except with ``$expand`` or ``Prefer: odata.include-annotations`` ("Conditional retrievals",
  https://github.com/MicrosoftDocs/powerapps-docs/blob/0a55aa56368fa1742438ed3842bb4bbd9f9ef042/powerapps-docs/
  developer/data-platform/webapi/perform-conditional-operations-using-web-api.md)
- Change tracking (``Prefer: odata.track-changes``, ``@odata.deltaLink``, ``$deletedEntity``):
  https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

from dualbus.d365 import DvTable
from dualbus.sandbox.dataverse.delta_pages import DeltaCursor, delta_page, opaque, opened
from dualbus.sandbox.dataverse.errors import (
    bad_request,
    change_tracking_not_enabled,
    expired_delta_token,
    unknown_query_property,
)
from dualbus.sandbox.dataverse.keys import require
from dualbus.sandbox.dataverse.messages import (
    ApiRequest,
    ApiResponse,
    Context,
    etag,
    json_response,
    not_modified,
    representation,
)
from dualbus.sandbox.dataverse.odata import EntityRef
from dualbus.sandbox.dataverse.query import QueryOptions, parse_query_options
from dualbus.sandbox.dataverse.store import Row
from dualbus.sandbox.dataverse.tables import properties

__all__ = ["get", "query_options", "select_of"]

# Dataverse returns at most 5,000 rows a page unless the client asks for fewer.
_DEFAULT_PAGE_SIZE = 5000
_UNSUPPORTED_WITH_TRACKING = ("$filter", "$orderby", "$expand", "$top")
# The most rows $count=true counts (count-rows.md above).
_COUNT_LIMIT = 5000
_TOTAL_COUNT = "Microsoft.Dynamics.CRM.totalrecordcount"
_LIMIT_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
# The time in a delta token, as the twin's clock (Context.now) writes it.
_ISSUED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def get(context: Context, request: ApiRequest, table: DvTable, ref: EntityRef) -> ApiResponse:
    """Answer a GET on an entity set or on one row."""
    options = query_options(table, request.query)
    if not ref.is_collection:
        row = require(context, table, ref)
        if _unchanged_since(request, row):
            return not_modified()
        body = representation(table, row, options.select)
        body["@odata.context"] = context.api_url(f"$metadata#{_context_name(table, options)}/$entity")
        return json_response(200, body)
    if "$deltatoken" in request.query:
        _require_tracking(context, table)
        return _delta(context, request, table, options)
    if "odata.track-changes" in request.prefer() or _read_track_token(request.query.get("$skiptoken")):
        _require_tracking(context, table)
        return _track(context, request, table, options)
    return _page(context, request, table, options)


def _require_tracking(context: Context, table: DvTable) -> None:
    if table.entity_set in context.untracked:
        raise change_tracking_not_enabled(table.logical_name)


def _unchanged_since(request: ApiRequest, row: Row) -> bool:
    """Whether ``If-None-Match`` names the row's current version, on a read that may answer 304."""
    held = request.headers.get("if-none-match")
    if not held or "$expand" in request.query or "odata.include-annotations" in request.prefer():
        return False
    return etag(row) in (tag.strip() for tag in held.split(","))


def query_options(table: DvTable, query: Mapping[str, str]) -> QueryOptions:
    """The query options, every property they name checked against the table (the documented 400)."""
    options = parse_query_options(query)
    unknown = sorted(options.names - properties(table))
    if unknown:
        raise unknown_query_property(table.logical_name, unknown[0])
    return options


def select_of(table: DvTable, query: Mapping[str, str]) -> tuple[str, ...] | None:
    """The checked ``$select`` of a write answered with its representation."""
    return query_options(table, {k: v for k, v in query.items() if k == "$select"}).select


def _context_name(table: DvTable, options: QueryOptions) -> str:
    return f"{table.entity_set}({','.join(options.select)})" if options.select else table.entity_set


def _select_query(options: QueryOptions) -> dict[str, str]:
    return {"$select": ",".join(options.select)} if options.select else {}


def _page(context: Context, request: ApiRequest, table: DvTable, options: QueryOptions) -> ApiResponse:
    page_size = _page_size(request)
    offset = _read_skip_token(request.query.get("$skiptoken"))
    size = page_size or _DEFAULT_PAGE_SIZE
    page, total = _matching_page(context, table, options, offset, size)
    body: dict[str, Any] = {
        "@odata.context": context.api_url(f"$metadata#{_context_name(table, options)}"),
        "value": [representation(table, row, options.select) for row in page],
    }
    body.update(_count_annotations(request, total))
    if offset + size < total:
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = _skip_token(offset + size)
        body["@odata.nextLink"] = context.api_url(f"{table.entity_set}?{urlencode(query, quote_via=quote)}")
    headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if page_size else {}
    return json_response(200, body, headers)


def _count_annotations(request: ApiRequest, total: int) -> dict[str, Any]:
    """``@odata.count`` when asked for, and the total-count annotations when the client prefers them."""
    counted = request.query.get("$count") == "true"
    annotations: dict[str, Any] = {"@odata.count": min(total, _COUNT_LIMIT)} if counted else {}
    wanted = request.prefer().get("odata.include-annotations")
    if wanted is not None and _included(wanted, _TOTAL_COUNT):
        annotations[f"@{_TOTAL_COUNT}"] = min(total, _COUNT_LIMIT) if counted else -1
    if wanted is not None and _included(wanted, _LIMIT_EXCEEDED):
        annotations[f"@{_LIMIT_EXCEEDED}"] = counted and total > _COUNT_LIMIT
    return annotations


def _included(patterns: str, annotation: str) -> bool:
    """Whether an ``odata.include-annotations`` list covers ``annotation``: by name, by ``namespace.*`` or by
    ``*``, each excluded with a leading ``-``; the most specific pattern that covers it decides, an exclusion
    over an inclusion as specific (the filter patterns of
    https://learn.microsoft.com/dotnet/api/microsoft.odata.odatapreferenceheader.annotationfilter; the tie:
    "negation has higher priority", AnnotationFilterPattern.CompareTo in OData/odata.net).
    """
    covering: list[tuple[int, bool]] = []  # (specificity, excluded) of each pattern that covers it
    for pattern in (item.strip() for item in patterns.split(",")):
        name = pattern.removeprefix("-")
        if name == annotation:
            specificity = len(annotation) + 1
        elif name == "*" or (name.endswith(".*") and annotation.startswith(name[:-1])):
            specificity = len(name) - 1
        else:
            continue
        covering.append((specificity, pattern.startswith("-")))
    # The most specific decides; between two as specific, the exclusion (True) sorts last and wins.
    return bool(covering) and not max(covering)[1]


def _matching_page(
    context: Context, table: DvTable, options: QueryOptions, offset: int, size: int
) -> tuple[list[Row], int]:
    """The page's rows and how many rows the query matches in all (``$top`` applied)."""
    store = context.store
    if options.predicate is None and not options.orderby:
        # Every row, in the stored order: the page is read alone, and the table is counted, not listed (a
        # $count polled twice a second would otherwise list half a million rows each time).
        total = store.count(table.entity_set)
        if options.top is not None:
            total = min(total, options.top)
        return store.rows_between(table.entity_set, offset, min(offset + size, total)), total
    rows = store.rows(table.entity_set)
    if options.predicate is not None:
        rows = [row for row in rows if options.predicate(row)]
    for column, descending in reversed(options.orderby):
        rows.sort(key=_column_sort_key(column), reverse=descending)
    if options.top is not None:
        rows = rows[: options.top]
    return rows[offset : offset + size], len(rows)


def _column_sort_key(column: str) -> Callable[[Row], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(column))


def _page_size(request: ApiRequest) -> int | None:
    requested = request.prefer().get("odata.maxpagesize")
    return int(requested) if requested and requested.isdigit() and int(requested) > 0 else None


def _sort_key(value: object) -> tuple[int, Any]:
    # Nulls first in ascending order, as SQL Server sorts them; strings without regard to case.
    if value is None:
        return (0, "")
    return (1, value.casefold() if isinstance(value, str) else value)


def _skip_token(offset: int) -> str:
    """An opaque paging token of a query's page: the next offset."""
    return opaque(f"offset:{offset}")


def _read_skip_token(token: str | None) -> int:
    if not token:
        return 0
    kind, _, number = opened(token).partition(":")
    if kind == "offset" and number.isdigit():
        return int(number)
    raise bad_request("The $skiptoken is not one this service issued.")


def _track_token(version: int, last: str) -> str:
    """An opaque paging token of a tracked snapshot: its pinned version and the last row id served."""
    return opaque(f"track:{version}:{last}")


def _read_track_token(token: str | None) -> tuple[int, str] | None:
    """The pinned version and last id of a tracked snapshot's page token; None for no token or a query's."""
    if not token:
        return None
    kind, _, rest = opened(token).partition(":")
    if kind != "track":
        return None
    version, _, last = rest.partition(":")
    if not version.isdigit() or not last:
        raise bad_request("The $skiptoken is not one this service issued.")
    return int(version), last


def _track(context: Context, request: ApiRequest, table: DvTable, options: QueryOptions) -> ApiResponse:
    for option in _UNSUPPORTED_WITH_TRACKING:
        if option in request.query:
            raise bad_request(
                f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.'
            )
    # The snapshot is pinned to the version it started at: whatever changes while it is paged through
    # comes again through the delta link, so a client misses nothing. A page starts after the last row
    # served, by id: a row deleted or created before it meanwhile does not shift the rows still to come.
    cursor = _read_track_token(request.query.get("$skiptoken"))
    version, last = (context.store.version, None) if cursor is None else cursor
    size = _page_size(request) or _DEFAULT_PAGE_SIZE
    found = context.store.rows_after(table.entity_set, last, size + 1)
    page = found[:size]
    body: dict[str, Any] = {
        "@odata.context": context.api_url(f"$metadata#{_context_name(table, options)}"),
        "value": [representation(table, row, options.select) for _, row in page],
    }
    if len(found) > size:
        query = {**_select_query(options), "$skiptoken": _track_token(version, page[-1][0])}
        body["@odata.nextLink"] = context.api_url(f"{table.entity_set}?{urlencode(query, quote_via=quote)}")
    else:
        body["@odata.deltaLink"] = _delta_link(context, table, options, version)
    return json_response(200, body, {"Preference-Applied": "odata.track-changes"})


def _delta(context: Context, request: ApiRequest, table: DvTable, options: QueryOptions) -> ApiResponse:
    token = request.query["$deltatoken"]
    issued = _read_delta_token(token)
    if issued is None or not context.store.token_is_valid(table.entity_set, *issued):
        raise expired_delta_token()
    version = issued[0]
    skip = request.query.get("$skiptoken")
    cursor = DeltaCursor.read(skip) if skip else DeltaCursor(upto=context.store.version)
    changed, deleted = context.store.changes_between(table.entity_set, version, cursor.upto)
    page_size = _page_size(request)
    entries, following = delta_page(changed, deleted, cursor, page_size or _DEFAULT_PAGE_SIZE)
    deleted_context = context.api_url(f"$metadata#{table.entity_set}/$deletedEntity")
    body: dict[str, Any] = {
        "@odata.context": context.api_url(f"$metadata#{_context_name(table, options)}/$delta"),
        "value": [
            {"@odata.context": deleted_context, "id": entry, "reason": "deleted"}
            if isinstance(entry, str)
            else representation(table, entry, options.select)
            for entry in entries
        ],
    }
    if following is None:
        body["@odata.deltaLink"] = _delta_link(context, table, options, cursor.upto)
    else:
        query = {**_select_query(options), "$deltatoken": token, "$skiptoken": following.token()}
        body["@odata.nextLink"] = context.api_url(f"{table.entity_set}?{urlencode(query, quote_via=quote)}")
    headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if page_size else {}
    return json_response(200, body, headers)


def _delta_link(context: Context, table: DvTable, options: QueryOptions, version: int) -> str:
    # Shaped like Dataverse's own tokens, "<version>!<timestamp>"; clients treat it as opaque.
    query = {**_select_query(options), "$deltatoken": f"{version}!{context.now()}"}
    return context.api_url(f"{table.entity_set}?{urlencode(query, quote_via=quote)}")


def _read_delta_token(token: str) -> tuple[int, float] | None:
    """The version a delta token starts from and when it was issued (epoch seconds); None if unreadable."""
    version, _, issued = unquote(token).partition("!")
    try:
        moment = datetime.strptime(issued, _ISSUED_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return (int(version), moment.timestamp()) if version.isdigit() else None
