"""The F&O sink: PATCH, POST or DELETE data entity rows by their keys (``dataAreaId`` included).

Data entities over OData (keys in the URL, ``cross-company=true``, PATCH/POST/DELETE):
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata
A row is read through ``$filter`` on its keys, not its key path: a missing row is then an empty answer, not
a 404, which a ``$batch`` that stops at its first failed request (OData's default where the service does not
honour ``odata.continue-on-error``) would stop at, so that every create cost a round trip of its own.
Standard entities expose no modified-by or modified-time field; the mark dualbus reads and writes is its
extension field ``DualbusSourceVersion`` (d365.FO_VERSION_FIELD, docs/deploy.md). Beside it each create and
update writes ``DualbusWriteDigest``, the digest of the row as the write leaves it, by which the F&O producer
knows the write when it comes back as a data event (``shared.fo_echo``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dualbus.consumers._batch import BatchingApi, Requester
from dualbus.consumers._sink import ApplyResult, ContendedError, TargetChange, differing, skip_reason
from dualbus.d365 import (
    FO_VERSION_FIELD,
    FO_WRITE_DIGEST_FIELD,
    fo_entities,
    fo_key_encoded_twice,
    fo_key_filter,
    fo_key_segment,
)
from dualbus.shared.api import error_message
from dualbus.shared.errors import PermanentError, TransientError
from dualbus.shared.fo_echo import write_digest
from dualbus.shared.http import Response
from dualbus.shared.maps import Scalar

__all__ = ["ODATA_ROOT", "VERSION_FIELD", "FoSink"]

VERSION_FIELD = FO_VERSION_FIELD
# The OData service root under the environment URL, where $batch is too (data-entities/odata, "Addressing").
ODATA_ROOT = "data"
# dualbus writes rows of every company, not only its user's default one.
_CROSS_COMPANY = {"cross-company": "true"}
_ATTEMPTS = 3
_NOT_FOUND = 404
_CONFLICT = 409
_PRECONDITION_FAILED = 412
_CLIENT_ERROR = 400
# F&O's answer to a PATCH or DELETE of a row that no longer exists (deleted between the read and the write):
# 400 with this inner message, not a 404. A client that takes it for "the row is gone", as the sink does:
# https://github.com/hotgluexyz/target-dynamics-finance/blob/ae05880f01239475781427e00b5df06a6da76e16/target_dynamics_finance/client.py
# (validate_response); the envelope it comes in (the generic "An error has occurred.", the reason in
# innererror.message) is that of a real F&O 400 to a PATCH:
# https://github.com/saintsystems/dynamics-sdk-php/issues/8
_NO_ROW_TO_UPDATE = "No resources were found when selecting for update."


@dataclass(frozen=True, slots=True)
class _Target:
    """A row's key path and the client that sends its writes."""

    api: Requester
    path: str


class FoSink:
    """Applies Dataverse changes to F&O data entities through OData: every change that is not stale wins.

    This is the F&O half of "Dataverse wins": a change is applied over whatever F&O holds, edits made in F&O
    meanwhile included, unless the row's ``DualbusSourceVersion`` already holds its version (a repair: a
    newer one). No clock and no modifier is compared.
    """

    def __init__(self, api: Requester) -> None:
        """``api`` is based on the environment URL (OData under ``data/``), batched or not."""
        self._api = api
        # A key path F&O must get encoded twice goes on a request of its own (d365 fo_key_encoded_twice).
        self._direct: Requester = api.unbatched if isinstance(api, BatchingApi) else api

    async def apply(self, change: TargetChange) -> ApplyResult:
        """Create, update or delete one row unless it is stale; a concurrent writer makes it read again."""
        entity = change.table_map.fo_entity
        segment = fo_key_segment(fo_entities()[entity], change.key)
        path = f"data/{entity}({segment})"
        writer = self._direct if fo_key_encoded_twice(segment) else self._api
        for _ in range(_ATTEMPTS):
            row = await self._read(change)
            done = skip_reason(change, row, VERSION_FIELD)
            if done is None:
                done = await self._write(_Target(writer, path), change, row)
            if done is not None:
                return done
        raise ContendedError(f"{path} kept changing under concurrent writers; will retry")

    async def aclose(self) -> None:
        """Let a batch in flight finish; the HTTP client itself belongs to the caller."""
        if isinstance(self._api, BatchingApi):
            await self._api.aclose()

    async def _write(
        self, target: _Target, change: TargetChange, row: Mapping[str, Any] | None
    ) -> ApplyResult | None:
        if change.delete:
            return await self._delete(target, change, row)
        if row is None:
            return await self._create(change)
        return await self._update(target, change, row)

    async def _create(self, change: TargetChange) -> ApplyResult | None:
        body: dict[str, object] = {**change.fields, **change.key, VERSION_FIELD: change.source_version}
        body[FO_WRITE_DIGEST_FIELD] = write_digest(change.table_map, body, change.source_version)
        entity = f"data/{change.table_map.fo_entity}"
        response = await self._api.request("POST", entity, json=body, params=_CROSS_COMPANY)
        if response.status_code == _CONFLICT:
            return None  # created meanwhile by someone else: read it and decide again
        if response.status_code >= _CLIENT_ERROR and await self._read(change) is not None:
            # F&O publishes no status for a create whose key exists (the twin answers 409, its choice): a
            # refused create whose row exists now lost a race to another writer, and is decided again on
            # that row rather than dead-lettered. With no row there, the refusal stands.
            return None
        self._check(response)
        return ApplyResult.APPLIED

    async def _update(
        self, target: _Target, change: TargetChange, row: Mapping[str, Any]
    ) -> ApplyResult | None:
        # Keys are in the URL; F&O also answers dataAreaId in lower case, which is no change.
        changed = differing(row, {k: v for k, v in change.fields.items() if k not in change.key})
        if not changed and not _behind(row, change):
            return ApplyResult.UNCHANGED
        # A change that alters no mapped value still records its version: the F&O producer reports the
        # mark as base_version, and a mark left behind would make the Dataverse sink refuse every later
        # F&O edit of the row as a conflict with an edit F&O in fact holds.
        body: dict[str, object] = {**changed, VERSION_FIELD: change.source_version}
        # The row as this write leaves it, of what the change carries: a field it does not carry (a map may
        # carry one F&O field towards Dataverse only) may hold an F&O edit not yet published, which the
        # digest must not make dualbus's, so such a row gets no digest (shared.fo_echo).
        after = {**{name: row[name] for name in (*change.key, *change.fields) if name in row}, **changed}
        body[FO_WRITE_DIGEST_FIELD] = write_digest(change.table_map, after, change.source_version)
        await change.updating()
        headers = {"If-Match": str(row["@odata.etag"])} if "@odata.etag" in row else {}
        response = await target.api.request(
            "PATCH", target.path, json=body, headers=headers, params=_CROSS_COMPANY
        )
        _check_routed(response)
        if _row_gone(response):
            await self._gone_indeed(change, response)
            return None  # deleted since the read: read it again (and create it, unless a tombstone says no)
        if response.status_code == _PRECONDITION_FAILED:
            return None  # changed since the read: read it again
        self._check(response)
        return ApplyResult.APPLIED if changed else ApplyResult.UNCHANGED

    async def _delete(
        self, target: _Target, change: TargetChange, row: Mapping[str, Any] | None
    ) -> ApplyResult | None:
        headers = {"If-Match": str(row["@odata.etag"])} if row and "@odata.etag" in row else {}
        response = await target.api.request("DELETE", target.path, headers=headers, params=_CROSS_COMPANY)
        _check_routed(response)
        if _row_gone(response):
            await self._gone_indeed(change, response)
            return ApplyResult.UNCHANGED
        if response.status_code == _PRECONDITION_FAILED:
            return None
        self._check(response)
        return ApplyResult.APPLIED

    async def _gone_indeed(self, change: TargetChange, response: Response) -> None:
        """Raise the refusal (TargetRejected) of a write answered that its row is gone, where a fresh read
        still finds the row: F&O's 400 says no row the request could select, which is not always a row
        deleted meanwhile. Taken for gone, the delete was counted done and lost, the update retried until
        Service Bus dead-lettered it without F&O's reason."""
        if await self._read(change) is not None:
            self._check(response)

    async def _read(self, change: TargetChange) -> dict[str, Any] | None:
        entity = change.table_map.fo_entity
        where = fo_key_filter(fo_entities()[entity], change.key)
        # Without $select F&O answers every field of the entity (over 300 of CustomersV3), where the
        # decision needs the key, the fields the change carries and the version mark (the ETag comes too);
        # the write digest covers only fields the change carries (shared.fo_echo), so it needs no more.
        select = ",".join(dict.fromkeys([*change.key, *change.fields, VERSION_FIELD]))
        params = {"$filter": where, "$select": select, **_CROSS_COMPANY}
        response = await self._api.request("GET", f"data/{entity}", params=params)
        if not any(isinstance(value, str) and "*" in value for value in change.key.values()):
            rows, _ = self._page(response)
            return rows[0] if rows else None
        # F&O reads a '*' in text compared with eq as a wildcard, so a key holding one matches other rows
        # too (sandbox/fo/query.py): the row is the one whose key is the change's, on whichever page of
        # the matches it is (F&O pages its answers, 10,000 rows a page; producers/fo_reader.py).
        followed: set[str] = set()
        while True:
            rows, link = self._page(response)
            found = next((row for row in rows if _has_key(row, change.key)), None)
            if found is not None or link is None:
                return found
            if link in followed:
                raise TransientError(f"F&O answered the next link {link} twice while reading {entity}")
            followed.add(link)
            # A next link is a whole URL, which a $batch part does not take as it is.
            response = await self._direct.request("GET", link)

    @classmethod
    def _page(cls, response: Response) -> tuple[list[dict[str, Any]], str | None]:
        """The rows of one answer to a query, and the link to its next page (None: the last)."""
        cls._check(response)
        body = response.json()
        if not isinstance(body, dict):
            return [], None
        rows, link = body.get("value"), body.get("@odata.nextLink")
        rows = [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []
        return rows, link if isinstance(link, str) else None

    @staticmethod
    def _check(response: Response) -> None:
        if response.status_code >= _CLIENT_ERROR:
            raise PermanentError(
                f"F&O rejected {response.request.method} {response.request.url.path}: "
                f"{response.status_code} {error_message(response)}",
                reason="TargetRejected",
            )


def _check_routed(response: Response) -> None:
    """Raise when F&O's web front found no route for a key path: its own 404 (``{"Message": "No HTTP
    resource was found that matches the request URI ..."}``, not an OData error; d365/_fo_key_paths.py).

    The row was never looked for, so the 404 says nothing of it: a delete counted as done on it would be
    lost, and an update read again would meet the same answer every time.
    """
    if response.status_code != _NOT_FOUND:
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and "error" not in body and isinstance(body.get("Message"), str):
        what = f"{response.request.method} {response.request.url.path}"
        raise PermanentError(f"F&O found no route for {what}: {body['Message']}", reason="TargetRejected")


def _row_gone(response: Response) -> bool:
    """Whether a PATCH or DELETE was refused because its row does not exist: F&O's 400 naming no row to
    update (``_NO_ROW_TO_UPDATE``), or an OData 404 (a web front's 404 is raised by ``_check_routed`` first).

    Any other 400 is a refusal of the write itself, left to ``_check``.
    """
    if response.status_code == _NOT_FOUND:
        return True
    if response.status_code != _CLIENT_ERROR:
        return False
    # Looked for inside the messages, as the clients that handle it do, in case F&O adds Infolog lines.
    return any(_NO_ROW_TO_UPDATE in message for message in _error_messages(response))


def _error_messages(response: Response) -> tuple[str, ...]:
    """The OData error's outer and inner messages (F&O puts the reason in the inner one), or none."""
    try:
        body = response.json()
    except ValueError:
        return ()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ()
    inner = error.get("innererror")
    messages = [error.get("message"), inner.get("message") if isinstance(inner, dict) else None]
    return tuple(message for message in messages if isinstance(message, str))


def _has_key(row: Mapping[str, Any], key: Mapping[str, Scalar]) -> bool:
    """Whether ``row`` holds ``key``, text compared without regard to case as F&O compares keys."""
    return all(_key_value(row.get(name)) == _key_value(value) for name, value in key.items())


def _key_value(value: object) -> object:
    if isinstance(value, str):
        try:
            # A date-time key reads back in F&O's own form ("...Z"), not necessarily as it was sent.
            return datetime.fromisoformat(value)
        except ValueError:
            return value.casefold()
    return value


def _behind(row: Mapping[str, Any], change: TargetChange) -> bool:
    """Whether the row's version mark is older than the change's (not the case for a repair of it)."""
    held = row.get(VERSION_FIELD)
    return held is None or int(str(held)) < change.source_version
