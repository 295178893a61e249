"""Create, upsert (PATCH by id or alternate key) and delete, with conditional headers.

- Create (204 with ``OData-EntityId``; 201 and the row with ``Prefer: return=representation``):
  https://github.com/MicrosoftDocs/powerapps-docs/blob/c05b4d585a227d0e9959d6d68049dea51c9b9073/powerapps-docs/
  developer/data-platform/webapi/create-entity-web-api.md
- Upsert: 204 either way; with ``return=representation`` 201 Created when it created the row and 200 OK when
  it updated it; an existing row keeps its key values (the body's are dropped), a created one takes the body's
  key values and the URL's only where the body has none; ``If-Match: *`` forbids the create (404):
  https://github.com/MicrosoftDocs/powerapps-docs/blob/0e238130235c2d24930f4bb6315503a4f3afdc4c/powerapps-docs/
  developer/data-platform/use-upsert-insert-update-record.md
- ``If-None-Match: *`` (no update, 412) and ``If-Match: <etag>`` (optimistic concurrency, 412):
  https://github.com/MicrosoftDocs/powerapps-docs/blob/1b6722f3d3bb2df684b71d6c2aab31dca9d8d4b4/powerapps-docs/
  developer/data-platform/webapi/perform-conditional-operations-using-web-api.md
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from dualbus.d365 import DvTable
from dualbus.sandbox.dataverse.errors import concurrency_mismatch, duplicate_record, object_not_found
from dualbus.sandbox.dataverse.keys import RowKey, find, require, row_key
from dualbus.sandbox.dataverse.messages import (
    ApiRequest,
    ApiResponse,
    Context,
    entity_url,
    etag,
    json_response,
    representation,
)
from dualbus.sandbox.dataverse.odata import EntityRef
from dualbus.sandbox.dataverse.reads import select_of
from dualbus.sandbox.dataverse.store import Row, UnitOfWork
from dualbus.sandbox.dataverse.tables import stored_column
from dualbus.sandbox.dataverse.validation import apply_payload
from dualbus.sandbox.dataverse.value_errors import check_value

__all__ = ["create", "delete", "upsert"]

# Key literals keep their OData syntax in the OData-EntityId URL; anything else not URL-safe is encoded.
_KEY_SAFE = "/()',=$:@!*+;"


def create(context: Context, request: ApiRequest, work: UnitOfWork, table: DvTable) -> ApiResponse:
    """POST to an entity set: 204 with ``OData-EntityId``, or 201 and the row with return=representation."""
    payload = request.json()
    row_id = _new_id(table, payload.get(table.primary_id))
    if context.store.get(table.entity_set, row_id) is not None:
        raise duplicate_record("Cannot insert duplicate key.")
    row = _new_row(context, table, row_id, request.user_id)
    apply_payload(context, table, row, payload)
    row = context.store.put(work, table.entity_set, row)
    return _written(context, request, table, row, created=True, url=entity_url(context, table, row))


def upsert(
    context: Context, request: ApiRequest, work: UnitOfWork, table: DvTable, ref: EntityRef
) -> ApiResponse:
    """PATCH one row: update it when it exists, create it (with the key's values) when it does not."""
    payload = request.json()
    key = row_key(table, ref)
    existing = find(context, table, key)
    if existing is None:
        if request.headers.get("if-match"):
            require(context, table, ref)  # If-Match forbids the create: the documented 404
        row = _created_by_key(context, request, table, key, payload)
    else:
        row = _updated(context, request, table, existing, payload, key_columns=frozenset(key.values or ()))
    row = context.store.put(work, table.entity_set, row)
    url = entity_url(context, table, row) if key.values is None else _key_url(context, request)
    return _written(context, request, table, row, created=existing is None, url=url)


def delete(
    context: Context, request: ApiRequest, work: UnitOfWork, table: DvTable, ref: EntityRef
) -> ApiResponse:
    """DELETE one row by id or alternate key: 204, or 404 when it is not there."""
    row = require(context, table, ref)
    _check_etag(request.headers.get("if-match"), row)
    context.store.delete(work, table.entity_set, row[table.primary_id])
    return ApiResponse(204, {"OData-Version": "4.0"})


def _created_by_key(
    context: Context, request: ApiRequest, table: DvTable, key: RowKey, payload: dict[str, Any]
) -> Row:
    row = _new_row(context, table, key.row_id or str(uuid.uuid4()), request.user_id)
    apply_payload(context, table, row, payload)
    for column, value in (key.values or {}).items():
        if row.get(stored_column(table, column)) is None:
            row[stored_column(table, column)] = _key_value(context, table, column, value)
    return row


def _updated(
    context: Context,
    request: ApiRequest,
    table: DvTable,
    existing: Row,
    payload: dict[str, Any],
    *,
    key_columns: frozenset[str],
) -> Row:
    if request.headers.get("if-none-match") == "*":
        raise duplicate_record()
    _check_etag(request.headers.get("if-match"), existing)
    row = dict(existing)
    apply_payload(context, table, row, payload, skip=key_columns)
    row["modifiedon"] = context.now()
    row["_modifiedby_value"] = request.user_id
    return row


def _key_value(context: Context, table: DvTable, column: str, value: object) -> object:
    """A URL key value as the created row stores it: a lookup's must name an existing row (else 404)."""
    definition = table.columns[column]
    if not definition.is_lookup:
        check_value(table, column, definition, value)
        return value
    for target_set in definition.targets.values():
        target = context.tables[target_set]
        if isinstance(value, str) and context.store.get(target.entity_set, value) is not None:
            return value
    target = context.tables[next(iter(definition.targets.values()))]
    raise object_not_found(target.logical_name, str(value))


def _new_id(table: DvTable, value: object) -> str:
    if value is None:
        return str(uuid.uuid4())
    check_value(table, table.primary_id, table.columns[table.primary_id], value)
    return str(value).lower()


def _check_etag(if_match: str | None, row: Row) -> None:
    if if_match and if_match != "*" and if_match != etag(row):
        raise concurrency_mismatch()


def _new_row(context: Context, table: DvTable, row_id: str, user_id: str) -> Row:
    now = context.now()
    return {
        table.primary_id: row_id.lower(),
        "createdon": now,
        "modifiedon": now,
        "_createdby_value": user_id,
        "_modifiedby_value": user_id,
    }


def _key_url(context: Context, request: ApiRequest) -> str:
    """The key URL the request addressed, as the documented upsert responses carry it in OData-EntityId."""
    return context.api_url(quote(request.path, safe=_KEY_SAFE))


def _written(
    context: Context, request: ApiRequest, table: DvTable, row: Row, *, created: bool, url: str
) -> ApiResponse:
    if request.prefer().get("return") == "representation":
        # The documented responses with data carry the row and its ETag, and no OData-EntityId.
        select = select_of(table, request.query)
        body = representation(table, row, select)
        body["@odata.context"] = context.api_url(f"$metadata#{_context_name(table, select)}/$entity")
        headers = {"Preference-Applied": "return=representation", "ETag": etag(row)}
        response = json_response(201 if created else 200, body, headers)
    else:
        response = ApiResponse(204, {"OData-Version": "4.0", "OData-EntityId": url})
    response.entity_url = url
    return response


def _context_name(table: DvTable, select: tuple[str, ...] | None) -> str:
    return f"{table.entity_set}({','.join(select)})" if select else table.entity_set
