"""OData v4 ``$batch`` in its multipart/mixed format: plain requests and atomic change sets.

A change set's requests all succeed or none does: on the first failure the writes before it are rolled
back and the change set answers with that failure alone. Requests outside change sets run one by one, and
the batch stops at the first that fails (a failed change set stops it too) unless the client prefers
``odata.continue-on-error``: then every request runs and the answer says the preference was applied
(OData 4.0 part 1, 8.2.8.3 and 8.3.6). The batch itself answers 200 either way, the failure inside it, as
Microsoft's OData Web API does, whose default since 5.7 is to stop at the first error:
https://docs.oasis-open.org/odata/odata/v4.0/errata03/os/complete/part1-protocol/odata-v4.0-errata03-os-part1-protocol-complete.html#_Toc453752234
https://learn.microsoft.com/odata/webapi/continue-on-error
See https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part1-protocol.html#sec_BatchRequests
and https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata (batch requests)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

from dualbus.sandbox.fo.errors import BadRequestError, ODataError
from dualbus.sandbox.fo.service import Reply, error_body
from dualbus.sandbox.fo.store import FoStore

__all__ = ["BatchPart", "Execute", "parse_batch", "run_batch"]

_REQUEST_LINE_WORDS = 2  # method and URL; the HTTP version may be left out
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)

Execute = Callable[["BatchPart"], Reply]


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One request inside a batch; ``content_id`` echoes the part's Content-ID header."""

    method: str
    resource: str
    params: dict[str, str]
    body: bytes
    content_id: str | None
    if_match: str | None = None


class _ChangeSetFailedError(Exception):
    """Carries the failing reply out of a change set's transaction so that it rolls back."""

    def __init__(self, reply: Reply, content_id: str | None) -> None:
        super().__init__(reply.status)
        self.reply = reply
        self.content_id = content_id


def boundary_of(content_type: str) -> str:
    """The multipart boundary named in a Content-Type header."""
    match = _BOUNDARY.search(content_type)
    if match is None or not content_type.lower().startswith("multipart/mixed"):
        raise BadRequestError("a $batch body must be multipart/mixed with a boundary")
    return match.group(1)


def _split(body: bytes, boundary: str) -> list[bytes]:
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.strip(b"\r\n"))
    return parts


def _head_and_body(chunk: bytes) -> tuple[dict[str, str], bytes]:
    text = chunk.replace(b"\r\n", b"\n")
    head, _, rest = text.partition(b"\n\n")
    headers = {}
    for line in head.decode("utf-8").split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _request(chunk: bytes) -> BatchPart:
    mime, inner = _head_and_body(chunk)
    request_line, _, remainder = inner.partition(b"\n")
    headers, body = _head_and_body(b"\n" + remainder) if remainder.strip() else ({}, b"")
    words = request_line.decode("utf-8").split()
    if len(words) < _REQUEST_LINE_WORDS:
        raise BadRequestError(f"malformed request line in $batch: {request_line!r}")
    url = urlsplit(words[1])
    path = unquote(
        url.path
    )  # a URL, percent-encoded as any (a key's space as %20): read as the server reads one
    resource = path.split("/data/", 1)[1] if "/data/" in path else path.lstrip("/")
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    return BatchPart(
        words[0].upper(), resource, params, body.strip(), mime.get("content-id"), headers.get("if-match")
    )


def parse_batch(body: bytes, content_type: str) -> list[BatchPart | list[BatchPart]]:
    """The batch's parts in order: a request, or a change set as a list of requests."""
    items: list[BatchPart | list[BatchPart]] = []
    for chunk in _split(body, boundary_of(content_type)):
        headers, inner = _head_and_body(chunk)
        kind = headers.get("content-type", "")
        if kind.lower().startswith("multipart/mixed"):
            items.append([_request(part) for part in _split(inner, boundary_of(kind))])
        else:
            items.append(_request(chunk))
    return items


def run_batch(
    store: FoStore,
    items: list[BatchPart | list[BatchPart]],
    execute: Execute,
    *,
    continue_on_error: bool = False,
) -> tuple[bytes, str]:
    """Execute the parsed batch; return the multipart response body and its Content-Type."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out: list[bytes] = []
    for item in items:
        out.append(f"--{boundary}\r\n".encode())
        if isinstance(item, BatchPart):
            reply = execute(item)
            out.append(_render_part(reply, item.content_id))
            failed = reply.status >= HTTPStatus.BAD_REQUEST
        else:
            rendered, failed = _run_change_set(store, item, execute)
            out.append(rendered)
        if failed and not continue_on_error:
            break
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/mixed; boundary={boundary}"


def _run_change_set(store: FoStore, parts: list[BatchPart], execute: Execute) -> tuple[bytes, bool]:
    """The change set's answer, and whether it failed (and was rolled back)."""
    replies: list[tuple[Reply, str | None]] = []
    try:
        with store.transaction():
            replies.extend(_execute_or_raise(part, execute) for part in parts)
    except _ChangeSetFailedError as failed:
        return _render_part(failed.reply, failed.content_id), True
    except ODataError as exc:
        return _render_part(Reply(exc.status, error_body(exc)), None), True
    boundary = f"changesetresponse_{uuid.uuid4()}"
    inner = [f"--{boundary}\r\n".encode() + _render_part(r, cid) for r, cid in replies]
    head = f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode()
    return head + b"".join(inner) + f"--{boundary}--\r\n".encode(), False


def _execute_or_raise(part: BatchPart, execute: Execute) -> tuple[Reply, str | None]:
    reply = execute(part)
    if reply.status >= HTTPStatus.BAD_REQUEST:
        raise _ChangeSetFailedError(reply, part.content_id)
    return reply, part.content_id


def _render_part(reply: Reply, content_id: str | None) -> bytes:
    mime = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id:
        mime += f"Content-ID: {content_id}\r\n"
    status_line = f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}\r\n"
    headers = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
    return (mime + "\r\n" + status_line + headers + "\r\n").encode() + reply.body + b"\r\n"
