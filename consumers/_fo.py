"""The F&O sink: PATCH or POST data entity rows by their keys (``dataAreaId`` included), guarded by versions.

Data entities over OData (keys, ``cross-company=true``, PATCH/POST/DELETE):
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from consumers._batch import Requester
from consumers._sink import ApplyResult, RowMarks, TargetChange, differing, guard
from shared.api import error_message
from shared.errors import PermanentError, TransientError
from shared.maps import Scalar, odata_literal

__all__ = ["VERSION_FIELD", "FoSink"]

VERSION_FIELD = "DualbusSourceVersion"
_MARKS = RowMarks(version=VERSION_FIELD, modified_by="ModifiedBy", modified_at="ModifiedDateTime")
# dualbus writes rows of every company, not only its user's default one.
_CROSS_COMPANY = {"cross-company": "true"}
_ATTEMPTS = 3
_KEY_SAFE = "'=,"
_NOT_FOUND = 404
_CONFLICT = 409
_PRECONDITION_FAILED = 412
_CLIENT_ERROR = 400


class FoSink:
    """Applies changes to F&O data entities through OData."""

    def __init__(self, api: Requester, *, writer_id: str | None = None) -> None:
        """``writer_id`` is what F&O records as ``ModifiedBy`` for dualbus; learned from writes when None."""
        self._api = api
        self.writer_id = writer_id

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Create, update or delete one row; a concurrent create or change makes it read again."""
        entity = change.table_map.fo_entity
        path = f"data/{entity}({_key_segment(change.key)})"
        for _ in range(_ATTEMPTS):
            row = await self._read(path)
            result = self._guard(change, row)
            if result is not None:
                return result
            if change.delete:
                done = await self._delete(path)
            elif row is None:
                done = await self._create(f"data/{entity}", change)
            else:
                done = await self._update(path, change, row)
            if done is not None:
                return done
        raise TransientError(f"{path} kept changing under concurrent writers; will retry")

    async def aclose(self) -> None:
        """Nothing of its own to close: the HTTP client belongs to the caller."""

    def _guard(self, change: TargetChange, row: Mapping[str, Any] | None) -> ApplyResult | None:
        return guard(change, row, _MARKS, self.writer_id)

    async def _create(self, entity: str, change: TargetChange) -> ApplyResult | None:
        body = {**change.fields, **change.key, VERSION_FIELD: change.source_version}
        response = await self._api.request("POST", entity, json=body, params=_CROSS_COMPANY)
        if response.status_code == _CONFLICT:
            return None  # created meanwhile by someone else: read it and decide again
        self._check(response)
        self._learn_writer(response)
        return ApplyResult.APPLIED

    async def _update(self, path: str, change: TargetChange, row: Mapping[str, Any]) -> ApplyResult | None:
        # Keys are in the URL; F&O also answers dataAreaId in lower case, which is no change.
        fields = {name: value for name, value in change.fields.items() if name not in change.key}
        body: dict[str, object] = {**differing(row, fields), VERSION_FIELD: change.source_version}
        headers = {"If-Match": str(row["@odata.etag"])} if "@odata.etag" in row else {}
        response = await self._api.request("PATCH", path, json=body, headers=headers, params=_CROSS_COMPANY)
        if response.status_code in {_NOT_FOUND, _PRECONDITION_FAILED}:
            return None
        self._check(response)
        return ApplyResult.APPLIED

    async def _delete(self, path: str) -> ApplyResult | None:
        response = await self._api.request("DELETE", path, params=_CROSS_COMPANY)
        if response.status_code == _NOT_FOUND:
            return ApplyResult.UNCHANGED
        if response.status_code == _PRECONDITION_FAILED:
            return None
        self._check(response)
        return ApplyResult.APPLIED

    async def _read(self, path: str) -> dict[str, Any] | None:
        response = await self._api.request("GET", path, params=_CROSS_COMPANY)
        if response.status_code == _NOT_FOUND:
            return None
        self._check(response)
        body = response.json()
        return body if isinstance(body, dict) else None

    def _learn_writer(self, response: httpx.Response) -> None:
        if self.writer_id is None and response.content:
            writer = response.json().get("ModifiedBy")
            self.writer_id = str(writer) if writer else None

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code >= _CLIENT_ERROR:
            raise PermanentError(
                f"F&O rejected {response.request.method} {response.request.url.path}: "
                f"{response.status_code} {error_message(response)}",
                reason="TargetRejected",
            )


def _key_segment(key: Mapping[str, Scalar]) -> str:
    # Quotes, '=' and ',' are key syntax; the rest that is not URL-safe (space, '/', '#') gets encoded.
    return ",".join(f"{name}={quote(odata_literal(value), safe=_KEY_SAFE)}" for name, value in key.items())
