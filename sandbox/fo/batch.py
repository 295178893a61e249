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

The body is read as F&O's OData library, Microsoft.OData.Core 7.x, reads it, whole, before any part runs: a
part is a change set (multipart/mixed, none inside another) or has Content-Type application/http and
Content-Transfer-Encoding binary; a request line is ``METHOD URL HTTP/1.1``, the method one of GET, DELETE,
PATCH, POST and PUT as written, and no GET in a change set. Anything else refuses the whole batch with the
library's message (``ODataMultipartMixedBatchReaderStream.ValidatePartHeaders``,
``ODataMultipartMixedBatchReader.ParseRequestLine``, ``HttpUtils.ValidateHttpMethod``; texts from
Microsoft.OData.Core.txt), at release 7.6.0:
https://github.com/OData/odata.net/blob/e74fdaa932c956132560fce9374b5d44fe226832/src/Microsoft.OData.Core/MultipartMixed/ODataMultipartMixedBatchReaderStream.cs
https://github.com/OData/odata.net/blob/e74fdaa932c956132560fce9374b5d44fe226832/src/Microsoft.OData.Core/MultipartMixed/ODataMultipartMixedBatchReader.cs
https://github.com/OData/odata.net/blob/e74fdaa932c956132560fce9374b5d44fe226832/src/Microsoft.OData.Core/HttpUtils.cs
https://github.com/OData/odata.net/blob/e74fdaa932c956132560fce9374b5d44fe226832/src/Microsoft.OData.Core/Microsoft.OData.Core.txt
That F&O answers these with 400 in its envelope, as the twin does, is an inference (no public F&O response
shows one).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

from dualbus.sandbox.fo.errors import BadRequestError, ODataError, RefusedError
from dualbus.sandbox.fo.service import Reply, error_body
from dualbus.sandbox.fo.store import FoStore
from dualbus.sandbox.fo.validation import ODATA_EXCEPTION

__all__ = ["BatchPart", "Execute", "parse_batch", "run_batch"]

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
# The library's constants and messages (see above): ODataConstants, MimeConstants, Microsoft.OData.Core.txt.
_HTTP_VERSION = "HTTP/1.1"
_METHODS = frozenset({"GET", "DELETE", "PATCH", "POST", "PUT"})
_OPERATION_TYPE, _CHANGE_SET_TYPE = "application/http", "multipart/mixed"
_MISSING_CONTENT_TYPE = (
    "The 'Content-Type' header is missing. The 'Content-Type' header must be specified for each MIME part "
    "of a batch message."
)
_INVALID_ENCODING = (
    "A missing or invalid 'Content-Transfer-Encoding' header was found. The 'Content-Transfer-Encoding' "
    "header must be specified for each batch operation, and its value must be 'binary'."
)
_INVALID_CONTENT_TYPE = (
    "The 'Content-Type' header value '{0}' is invalid. When this is the start of the change set, the value "
    "must be 'multipart/mixed'; otherwise it must be 'application/http'."
)
_NESTED_CHANGE_SET = "Nested change sets in a batch payload are not supported."
_INVALID_REQUEST_LINE = (
    "The request line '{0}' is invalid. The request line at the start of each operation must be of the "
    "format 'HttpMethod RequestUrl HttpVersion'."
)
_INVALID_HTTP_VERSION = (
    "The HTTP version '{0}' used in a batch operation request or response is not valid. The value must be "
    "'HTTP/1.1'."
)
_INVALID_METHOD = (
    "The string '{0}' cannot be converted into a supported HTTP method. The only supported HTTP methods are "
    "GET, DELETE, PUT, POST and PATCH."
)
_GET_IN_CHANGE_SET = (
    "An invalid HTTP method '{0}' was detected for a request in a change set. Requests in change sets only "
    "support the HTTP methods 'POST', 'PUT', 'DELETE', and 'PATCH'."
)

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


def _refused(message: str) -> RefusedError:
    return RefusedError(message, inner_type=ODATA_EXCEPTION)


def _is_change_set(headers: dict[str, str], *, in_change_set: bool) -> bool:
    """Whether a part with these MIME headers is a change set; RefusedError for what the library refuses."""
    kind = headers.get("content-type")
    if kind is None:
        raise _refused(_MISSING_CONTENT_TYPE)
    # Type and subtype alone, as the library compares them (ValidatePartHeaders, MediaTypeAndSubtypeAreEqual):
    # parameters such as msgtype=request pass.
    if kind.split(";", 1)[0].strip().lower() == _OPERATION_TYPE:
        if headers.get("content-transfer-encoding", "").lower() != "binary":
            raise _refused(_INVALID_ENCODING)
        return False
    if kind.lower().startswith(_CHANGE_SET_TYPE):
        if in_change_set:
            raise _refused(_NESTED_CHANGE_SET)
        return True
    raise _refused(_INVALID_CONTENT_TYPE.format(kind))


def _method_and_url(line: str, *, in_change_set: bool) -> tuple[str, str]:
    """The method and URL of a request line, checked as the library checks them."""
    # The URL may hold spaces: it is what lies between the first space and the last.
    first, last = line.find(" "), line.rfind(" ")
    if first <= 0 or len(line) - 3 <= first or last - first - 1 <= 0 or len(line) - 1 <= last:
        raise _refused(_INVALID_REQUEST_LINE.format(line))
    method, url, version = line[:first], line[first + 1 : last], line[last + 1 :]
    if version != _HTTP_VERSION:
        raise _refused(_INVALID_HTTP_VERSION.format(version))
    if method not in _METHODS:
        raise _refused(_INVALID_METHOD.format(method))
    if in_change_set and method == "GET":
        raise _refused(_GET_IN_CHANGE_SET.format(method))
    return method, url


def _request(chunk: bytes, *, in_change_set: bool = False) -> BatchPart:
    mime, inner = _head_and_body(chunk)
    _is_change_set(mime, in_change_set=in_change_set)
    request_line, _, remainder = inner.partition(b"\n")
    headers, body = _head_and_body(b"\n" + remainder) if remainder.strip() else ({}, b"")
    method, target = _method_and_url(request_line.decode("utf-8"), in_change_set=in_change_set)
    url = urlsplit(target)
    path = unquote(
        url.path
    )  # a URL, percent-encoded as any (a key's space as %20): read as the server reads one
    resource = path.split("/data/", 1)[1] if "/data/" in path else path.lstrip("/")
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    return BatchPart(method, resource, params, body.strip(), mime.get("content-id"), headers.get("if-match"))


def parse_batch(body: bytes, content_type: str) -> list[BatchPart | list[BatchPart]]:
    """The batch's parts in order: a request, or a change set as a list of requests."""
    items: list[BatchPart | list[BatchPart]] = []
    for chunk in _split(body, boundary_of(content_type)):
        headers, inner = _head_and_body(chunk)
        if _is_change_set(headers, in_change_set=False):
            parts = _split(inner, boundary_of(headers["content-type"]))
            items.append([_request(part, in_change_set=True) for part in parts])
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
