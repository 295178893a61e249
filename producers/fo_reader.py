"""Reading F&O data entities over OData: one row by key, and pages across every company.

Company-specific entities answer only the caller's default company unless ``cross-company=true`` is set;
the producer always reads across companies. Pages follow ``@odata.nextLink`` (at most 10,000 rows a page).
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from producers.errors import SourceError
from shared.api import ApiClient, error_message
from shared.maps import odata_literal

__all__ = ["FoReader", "key_path"]

_OK = 200
_NOT_FOUND = 404
_QUOTE = "'"


def key_path(entity: str, key: Mapping[str, str | int]) -> str:
    """The OData path of one row: ``CustomersV3(dataAreaId='usmf',CustomerAccount='C-1')``."""
    parts = ",".join(f"{name}={quote(odata_literal(value), safe=_QUOTE)}" for name, value in key.items())
    return f"{entity}({parts})"


class FoReader:
    """OData reads against one F&O environment's ``/data`` endpoint."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    async def row(self, entity: str, key: Mapping[str, str | int]) -> dict[str, Any] | None:
        """The current state of one row, or None when it does not exist (any more)."""
        response = await self._api.request(
            "GET", f"data/{key_path(entity, key)}", params={"cross-company": "true"}
        )
        if response.status_code == _NOT_FOUND:
            return None
        return _body(entity, response)

    async def count(self, entity: str, *, filter_: str | None = None) -> int:
        """How many rows a query matches (``$count=true`` with ``$top=0``)."""
        params = {"cross-company": "true", "$count": "true", "$top": "0"}
        if filter_:
            params["$filter"] = filter_
        body = _body(entity, await self._api.request("GET", f"data/{entity}", params=params))
        return int(body.get("@odata.count", 0))

    async def page(
        self,
        entity: str,
        *,
        filter_: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
    ) -> list[dict[str, Any]]:
        """The rows of one query, following next links until ``top`` rows (or all) were read."""
        params = {"cross-company": "true"}
        if filter_:
            params["$filter"] = filter_
        if orderby:
            params["$orderby"] = orderby
        if top is not None:
            params["$top"] = str(top)
        body = _body(entity, await self._api.request("GET", f"data/{entity}", params=params))
        rows: list[dict[str, Any]] = list(body.get("value", []))
        while "@odata.nextLink" in body:
            body = _body(entity, await self._api.request("GET", str(body["@odata.nextLink"])))
            rows.extend(body.get("value", []))
        return rows


def _body(entity: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code != _OK:
        raise SourceError(f"reading {entity} failed: {error_message(response)}")
    body: dict[str, Any] = response.json()
    return body
