"""Create, upsert (PATCH by id or alternate key) and delete, with ``@odata.bind`` and conditional headers.

- Create: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api
- Associate on create/update with ``@odata.bind``:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
- Upsert, ``If-Match: *`` (no create) and ``If-None-Match: *`` (no update):
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
- Optimistic concurrency with ``If-Match: <etag>``:
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api
"""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.dataverse.errors import (
    bad_request,
    concurrency_mismatch,
    duplicate_record,
    key_not_found,
    max_length_exceeded,
    object_not_found,
)
from sandbox.dataverse.messages import (
    ApiRequest,
    ApiResponse,
    Context,
    entity_url,
    etag,
    json_response,
    representation,
)
from sandbox.dataverse.odata import EntityRef, parse_entity_path
from sandbox.dataverse.store import Row, UnitOfWork
from sandbox.dataverse.tables import TableDef, lookup_value_column

__all__ = ["create", "delete", "locate", "require", "upsert"]

_BIND = "@odata.bind"
# Columns the platform maintains; a payload that carries them is ignored for them, as Dataverse does.
_SYSTEM_COLUMNS = frozenset(
    {"versionnumber", "createdon", "modifiedon", "_createdby_value", "_modifiedby_value"}
)


def locate(context: Context, table: TableDef, ref: EntityRef) -> Row | None:
    """The row a key segment names (by primary id or by the full alternate key), or None."""
    if ref.row_id is not None:
        return context.store.get(table.entity_set, ref.row_id)
    values = ref.key_values or {}
    if set(values) != set(table.alternate_key):
        raise bad_request(
            f"The key {sorted(values)} is not a key of {table.logical_name}; its alternate key is "
            f"{list(table.alternate_key)}."
        )
    key = {table.key_column(name): value for name, value in values.items()}
    row_id = context.store.find_id(table.entity_set, key)
    return context.store.get(table.entity_set, row_id) if row_id is not None else None


def require(context: Context, table: TableDef, ref: EntityRef) -> Row:
    """The row a key segment names, or the documented 404 for a missing id or missing key values."""
    row = locate(context, table, ref)
    if row is None:
        if ref.row_id is not None:
            raise object_not_found(table.logical_name, ref.row_id)
        raise key_not_found(table.logical_name)
    return row


def create(context: Context, request: ApiRequest, work: UnitOfWork, table: TableDef) -> ApiResponse:
    """POST to an entity set: 204 with ``OData-EntityId``, or 201 and the row with return=representation."""
    payload = request.json()
    row_id = str(payload.get(table.primary_id) or uuid.uuid4()).lower()
    if context.store.get(table.entity_set, row_id) is not None:
        raise duplicate_record("Cannot insert duplicate key.")
    row = _new_row(context, table, row_id, request.user_id)
    _apply(context, table, row, payload)
    return _written(context, request, table, _insert(context, work, table, row), created_status=201)


def upsert(
    context: Context, request: ApiRequest, work: UnitOfWork, table: TableDef, ref: EntityRef
) -> ApiResponse:
    """PATCH one row: update it when it exists, create it (with the key's values) when it does not."""
    payload = request.json()
    existing = locate(context, table, ref)
    if_match = request.headers.get("if-match")
    if existing is None:
        if if_match:
            require(context, table, ref)  # If-Match forbids the create: the documented 404
        row = _new_row(context, table, ref.row_id or str(uuid.uuid4()), request.user_id)
        _apply(context, table, row, payload)
        _apply_key(context, table, row, ref)  # the URL's key wins over key columns in the body
        return _written(context, request, table, _insert(context, work, table, row), created_status=200)
    if request.headers.get("if-none-match") == "*":
        raise duplicate_record()
    _check_etag(if_match, existing)
    row = dict(existing)
    _apply(context, table, row, payload)
    row["modifiedon"] = context.now()
    row["_modifiedby_value"] = request.user_id
    context.store.put(work, table.entity_set, row)
    return _written(context, request, table, row, created_status=200)


def delete(
    context: Context, request: ApiRequest, work: UnitOfWork, table: TableDef, ref: EntityRef
) -> ApiResponse:
    """DELETE one row by id or alternate key: 204, or 404 when it is not there."""
    row = require(context, table, ref)
    _check_etag(request.headers.get("if-match"), row)
    context.store.delete(work, table.entity_set, row[table.primary_id])
    return ApiResponse(204, {"OData-Version": "4.0"})


def _check_etag(if_match: str | None, row: Row) -> None:
    if if_match and if_match != "*" and if_match != etag(row):
        raise concurrency_mismatch()


def _new_row(context: Context, table: TableDef, row_id: str, user_id: str) -> Row:
    now = context.now()
    return {
        table.primary_id: row_id.lower(),
        "createdon": now,
        "modifiedon": now,
        "_createdby_value": user_id,
        "_modifiedby_value": user_id,
    }


def _insert(context: Context, work: UnitOfWork, table: TableDef, row: Row) -> Row:
    for column, default in table.defaults.items():
        if row.get(column) is None:
            row[column] = default
    return context.store.put(work, table.entity_set, row)


def _apply_key(context: Context, table: TableDef, row: Row, ref: EntityRef) -> None:
    """A create through an alternate-key URL takes the key's values, and key lookups must resolve."""
    for name, value in (ref.key_values or {}).items():
        if name in table.lookups:
            target = context.tables[table.lookups[name]]
            if value is None or context.store.get(target.entity_set, str(value)) is None:
                raise object_not_found(target.logical_name, str(value))
        row[table.key_column(name)] = value


def _apply(context: Context, table: TableDef, row: Row, payload: dict[str, Any]) -> None:
    """Copy a payload's columns into ``row``, resolving binds and checking declared lengths."""
    for name, value in payload.items():
        if name.endswith(_BIND):
            navigation = name[: -len(_BIND)]
            row[lookup_value_column(navigation)] = _resolve_bind(context, table, navigation, value)
        elif "@" in name or name in _SYSTEM_COLUMNS or name == table.primary_id:
            continue
        elif name in table.lookups or (name.startswith("_") and name.endswith("_value")):
            raise bad_request(
                f"'{name}' is a lookup; set it with '{name.strip('_').removesuffix('_value')}@odata.bind'."
            )
        else:
            limit = table.max_lengths.get(name)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                raise max_length_exceeded(table.logical_name, name, limit)
            row[name] = value


def _resolve_bind(context: Context, table: TableDef, navigation: str, value: object) -> str | None:
    """The id of the row a bind points at, or Dataverse's 404 when it points at nothing."""
    target_set = table.lookups.get(navigation)
    if target_set is None:
        raise bad_request(
            f"An undeclared property '{navigation}' which only has property annotations in the payload but "
            "no property value was found in the payload."
        )
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"The value of '{navigation}{_BIND}' must be a URL.")
    ref = parse_entity_path(value)
    if ref.entity_set != target_set or ref.is_collection:
        raise bad_request(f"'{navigation}' must point at one row of {target_set}, not '{value}'.")
    target = context.tables[target_set]
    return str(require(context, target, ref)[target.primary_id])


def _written(
    context: Context, request: ApiRequest, table: TableDef, row: Row, *, created_status: int
) -> ApiResponse:
    url = entity_url(context, table, row)
    headers = {"OData-Version": "4.0", "OData-EntityId": url}
    if request.prefer().get("return") == "representation":
        select = request.query.get("$select")
        columns = tuple(c.strip() for c in select.split(",")) if select else None
        body = representation(table, row, columns)
        body["@odata.context"] = context.api_url(f"$metadata#{table.entity_set}/$entity")
        headers["Preference-Applied"] = "return=representation"
        response = json_response(created_status, body, headers)
    else:
        response = ApiResponse(204, headers)
    response.entity_url = url
    return response
