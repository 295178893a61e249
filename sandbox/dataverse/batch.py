"""``$batch``: multipart/mixed requests, atomic change sets, ``odata.continue-on-error``, ``$n`` references.

See https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl

import orjson

from dualbus.sandbox.dataverse.errors import DataverseApiError, bad_request
from dualbus.sandbox.dataverse.messages import ApiRequest, ApiResponse, Context, error_response
from dualbus.sandbox.dataverse.odata import relative_path
from dualbus.sandbox.dataverse.service import DataverseService

__all__ = ["run_batch"]

_MAX_REQUESTS = 1000
_FIRST_ERROR_STATUS = 400
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_REFERENCE = re.compile(r"^\$(\d+)")


@dataclass(frozen=True, slots=True)
class _Part:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None


@dataclass(slots=True)
class _ChangeSet:
    parts: list[_Part] = field(default_factory=list)


def run_batch(service: DataverseService, context: Context, request: ApiRequest) -> ApiResponse:
    """Execute a batch in order and answer with one multipart response holding each part's status."""
    items = _parse(request.headers.get("content-type", ""), request.body)
    if sum(len(i.parts) if isinstance(i, _ChangeSet) else 1 for i in items) > _MAX_REQUESTS:
        raise bad_request(f"The number of requests in a batch cannot exceed {_MAX_REQUESTS}.")
    continue_on_error = "odata.continue-on-error" in request.prefer()
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[bytes] = []
    first_failure: int | None = None
    for item in items:
        if isinstance(item, _ChangeSet):
            rendered, status = _run_change_set(service, context, request.user_id, item)
        else:
            response = _run_single(service, context, request.user_id, item)
            rendered, status = _render_part(response, item.content_id), response.status
        chunks.append(f"--{boundary}\r\n".encode() + rendered)
        if status >= _FIRST_ERROR_STATUS:
            first_failure = first_failure or status
            if not continue_on_error:
                break
    chunks.append(f"--{boundary}--\r\n".encode())
    # Without continue-on-error the batch takes the status of the request that stopped it.
    status = 200 if continue_on_error or first_failure is None else first_failure
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}", "OData-Version": "4.0"}
    return ApiResponse(status, headers, b"".join(chunks))


def _run_single(service: DataverseService, context: Context, user_id: str, part: _Part) -> ApiResponse:
    try:
        sub_request = _sub_request(part, user_id, {})
    except DataverseApiError as exc:
        return error_response(exc)
    return service.handle(context, sub_request)


def _run_change_set(
    service: DataverseService, context: Context, user_id: str, change_set: _ChangeSet
) -> tuple[bytes, int]:
    """All parts in one unit of work: every response, or the first error alone after a full rollback."""
    references: dict[str, str] = {}
    responses: list[tuple[ApiResponse, str | None]] = []
    try:
        with service.store.transaction() as work:
            for part in change_set.parts:
                if part.method == "GET":
                    raise bad_request("GET requests are not allowed within change sets.")
                response = service.execute(context, _sub_request(part, user_id, references), work)
                if part.content_id is not None and response.entity_url is not None:
                    references[part.content_id] = response.entity_url
                responses.append((response, part.content_id))
    except DataverseApiError as exc:
        return _render_part(error_response(exc), None), exc.status
    boundary = f"changesetresponse_{uuid.uuid4()}"
    body = [f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode()]
    body.extend(f"--{boundary}\r\n".encode() + _render_part(r, cid) for r, cid in responses)
    body.append(f"--{boundary}--\r\n".encode())
    return b"".join(body), 200


def _sub_request(part: _Part, user_id: str, references: dict[str, str]) -> ApiRequest:
    target = part.target
    reference = _REFERENCE.match(target)
    if reference is not None:
        url = references.get(reference.group(1))
        if url is None:
            raise bad_request(
                f"Content-ID Reference: '${reference.group(1)}' does not exist in the batch context."
            )
        target = url + target[reference.end() :]
    path, _, query = target.partition("?")
    body = _resolve_references(part.body, references) if references else part.body
    return ApiRequest(
        method=part.method,
        # A part's request line may carry the absolute URL, the API path or the relative path: one resource.
        path=relative_path(path),
        query=dict(parse_qsl(query, keep_blank_values=True)),
        headers=part.headers,
        body=body,
        user_id=user_id,
    )


def _resolve_references(body: bytes, references: dict[str, str]) -> bytes:
    """Replace ``"$1"`` bind values with the URL of the row created under Content-ID 1."""
    if b'"$' not in body:
        return body
    payload = orjson.loads(body)
    for name, value in payload.items():
        if name.endswith("@odata.bind") and isinstance(value, str) and value[1:] in references:
            payload[name] = references[value[1:]]
    return orjson.dumps(payload)


def _render_part(response: ApiResponse, content_id: str | None) -> bytes:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        head += f"Content-ID: {content_id}\r\n"
    status_line = f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}\r\n"
    header_lines = "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
    return f"{head}\r\n{status_line}{header_lines}\r\n".encode() + response.body + b"\r\n"


def _parse(content_type: str, body: bytes) -> list[_Part | _ChangeSet]:
    items: list[_Part | _ChangeSet] = []
    for headers, content in _split(content_type, body.decode("utf-8")):
        part_type = headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            change_set = _ChangeSet()
            for inner_headers, inner in _split(part_type, content):
                change_set.parts.append(_http_part(inner, inner_headers.get("content-id")))
            items.append(change_set)
        else:
            items.append(_http_part(content, headers.get("content-id")))
    return items


def _split(content_type: str, text: str) -> list[tuple[dict[str, str], str]]:
    """The (headers, content) of each part of a multipart body; clients send CRLF or bare LF line ends."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise bad_request("A batch needs Content-Type multipart/mixed with a boundary.")
    segments = text.replace("\r\n", "\n").split(f"--{match.group(1)}")
    parts = []
    for segment in segments[1:]:
        if segment.startswith("--"):
            break
        head, _, content = segment.lstrip("\n").partition("\n\n")
        parts.append((_headers(head), content))
    return parts


def _headers(block: str) -> dict[str, str]:
    headers = {}
    for line in block.split("\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _http_part(content: str, content_id: str | None) -> _Part:
    head, _, body = content.partition("\n\n")
    request_line, _, header_block = head.strip("\n").partition("\n")
    method, _, rest = request_line.partition(" ")
    target = rest.strip().split(" ")[0]
    if not target:
        raise bad_request(f"'{request_line}' is not an HTTP request line.")
    return _Part(method.upper(), target, _headers(header_block), body.strip().encode(), content_id)
