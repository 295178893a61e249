"""Reading F&O data entities over OData: rows by key, streamed pages, counts, always across companies.

Company-specific entities answer only the caller's default company unless ``cross-company=true`` is set;
server-driven paging answers at most 10,000 rows a page with an ``@odata.nextLink``; ``$filter`` takes
eq/ne/and/or (``in`` is not supported), with typed literals (``dualbus.d365.fo_literal``):
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/2bb90a0ca66952ed09ec1a1917190d7f105d1e2d/articles/fin-ops-core/dev-itpro/data-entities/odata.md
A row is looked up with ``$filter`` on its key fields rather than a key path, so the same typed literals
serve one row and several rows at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from dualbus.d365 import FoEntity
from dualbus.d365 import fo_key_filter as key_filter
from dualbus.d365 import fo_literal as literal
from dualbus.producers.errors import SourceError
from dualbus.shared.api import ApiClient, error_message
from dualbus.shared.http import Response
from dualbus.shared.retry import RetryPolicy

__all__ = ["READ_RETRY", "FoReader", "key_filter", "literal"]

# A read is retried on TransientError (F&O busy, throttling, unreachable) a few times, with waits of at
# most 10 s: past them the step fails and its round runs again later.
READ_RETRY = RetryPolicy(attempts=6, max_wait=10.0)

_OK = 200
Row = dict[str, Any]


# Keys looked up per request by ``FoReader.matching`` callers: an OData filter of "or"-ed keys stays short.
KEYS_PER_QUERY = 20


class FoReader:
    """OData reads against one F&O environment's ``/data`` endpoint, retrying what a retry can fix."""

    def __init__(self, api: ApiClient, *, retry: RetryPolicy = READ_RETRY) -> None:
        self._api = api
        self._retry = retry

    async def matching(
        self, entity: FoEntity, keys: Sequence[Mapping[str, object]], select: Sequence[str]
    ) -> list[Row]:
        """The rows matching any of ``keys`` (field values; ``KEYS_PER_QUERY`` at most per call)."""
        if not keys:
            return []
        query = " or ".join(f"({key_filter(entity, key)})" for key in keys)
        rows: list[Row] = []
        async for page in self.pages(entity.entity_set, select=select, filter_=query):
            rows.extend(page)
        return rows

    async def pages(
        self,
        entity: str,
        *,
        select: Sequence[str] = (),
        filter_: str | None = None,
        orderby: Iterable[str] = (),
    ) -> AsyncIterator[list[Row]]:
        """The rows of one query, one server page at a time: only one page is held in memory."""
        params = _params(select, filter_, orderby)
        body = await self._get(entity, f"data/{entity}", params)
        while True:
            yield list(body.get("value", []))
            link = body.get("@odata.nextLink")
            if not link:
                return
            body = await self._get(entity, str(link), None)

    async def page(
        self,
        entity: str,
        *,
        select: Sequence[str] = (),
        filter_: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
    ) -> list[Row]:
        """The rows of one query, following next links until ``top`` rows (or all) were read."""
        params = _params(select, filter_, [orderby] if orderby else [])
        if top is not None:
            params["$top"] = str(top)
        body = await self._get(entity, f"data/{entity}", params)
        rows: list[Row] = list(body.get("value", []))
        while "@odata.nextLink" in body:
            body = await self._get(entity, str(body["@odata.nextLink"]), None)
            rows.extend(body.get("value", []))
        return rows

    async def count(self, entity: str, *, filter_: str | None = None) -> int:
        """How many rows a query matches (``$count=true`` with ``$top=0``)."""
        params = {**_params((), filter_, ()), "$count": "true", "$top": "0"}
        body = await self._get(entity, f"data/{entity}", params)
        return int(body.get("@odata.count", 0))

    async def _get(self, entity: str, path: str, params: dict[str, str] | None) -> dict[str, Any]:
        response = await self._retry.call(lambda: self._api.request("GET", path, params=params))
        return _body(entity, response)


def _params(select: Sequence[str], filter_: str | None, orderby: Iterable[str]) -> dict[str, str]:
    params = {"cross-company": "true"}
    if select:
        params["$select"] = ",".join(dict.fromkeys(select))
    if filter_:
        params["$filter"] = filter_
    order = ",".join(orderby)
    if order:
        params["$orderby"] = order
    return params


def _body(entity: str, response: Response) -> dict[str, Any]:
    if response.status_code != _OK:
        raise SourceError(f"reading {entity} failed: {error_message(response)}")
    body = response.json()
    if not isinstance(body, dict):
        raise SourceError(f"reading {entity} gave a JSON {type(body).__name__}, not an object")
    return body
