"""The twin's own request and response values, shared by plain HTTP calls and the parts of a ``$batch``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dualbus.d365 import DvTable
from dualbus.sandbox.dataverse.errors import PAYLOAD_ERROR, DataverseApiError
from dualbus.sandbox.dataverse.odata import API_PREFIX
from dualbus.sandbox.dataverse.store import Row, Store
from dualbus.sandbox.odata_prefer import parse_prefer

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "Context",
    "entity_url",
    "error_response",
    "etag",
    "json_response",
    "not_modified",
    "representation",
]

_JSON_HEADERS = {"Content-Type": "application/json; odata.metadata=minimal", "OData-Version": "4.0"}


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One Web API operation: method, path below ``/api/data/v9.2/``, query, lower-cased headers, body."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    user_id: str

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or a 400 when it is not one."""
        try:
            payload = orjson.loads(self.body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise DataverseApiError(400, PAYLOAD_ERROR, f"The request body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise DataverseApiError(400, PAYLOAD_ERROR, "The request body must be a JSON object.")
        return payload

    def prefer(self) -> dict[str, str]:
        """The ``Prefer`` preferences, name -> value ('' for a bare preference)."""
        return parse_prefer(self.headers.get("prefer", ""))


@dataclass(slots=True)
class ApiResponse:
    """A status, headers and body; ``entity_url`` names the row a write touched (for ``$1`` references)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    entity_url: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What an operation needs besides its request: tables, rows, clock and the public base URL."""

    tables: Mapping[str, DvTable]
    store: Store
    now: Callable[[], str]
    base_url: str
    # Entity sets whose change tracking is not enabled (Track changes off).
    untracked: frozenset[str] = frozenset()

    def api_url(self, relative: str) -> str:
        """An absolute Web API URL for a path below the API root."""
        return f"{self.base_url}{API_PREFIX}{relative}"


def etag(row: Row) -> str:
    """The weak ETag of a row's version, as ``@odata.etag`` and ``If-Match`` carry it."""
    return f'W/"{row["versionnumber"]}"'


def entity_url(context: Context, table: DvTable, row: Row) -> str:
    """The row's canonical URL, as the ``OData-EntityId`` header carries it."""
    return context.api_url(f"{table.entity_set}({row[table.primary_id]})")


def representation(table: DvTable, row: Row, select: tuple[str, ...] | None) -> dict[str, Any]:
    """A row as the Web API returns it: its ETag, then the selected columns (all when none are) and its id."""
    body: dict[str, Any] = {"@odata.etag": etag(row)}
    if select is None:
        body.update(row)
    else:
        for column in select:
            body[column] = row.get(column)
        body[table.primary_id] = row[table.primary_id]
    return body


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> ApiResponse:
    """A JSON response with the Web API's content type and OData version headers."""
    return ApiResponse(status, {**_JSON_HEADERS, **(headers or {})}, orjson.dumps(body))


def not_modified() -> ApiResponse:
    """304 Not Modified: no body, the JSON headers as the documented example shows them."""
    return ApiResponse(304, dict(_JSON_HEADERS))


def error_response(error: DataverseApiError) -> ApiResponse:
    """The Web API's error shape: ``{"error": {"code": "0x...", "message": "..."}}``."""
    return json_response(error.status, error.body(), error.headers)
