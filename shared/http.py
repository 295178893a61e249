"""Plain HTTP for the rest of dualbus: clients, one-off requests and answers, with httpx errors translated.

With ``shared.api`` (the authenticated OData client built on it) this is the only place that imports httpx
(a test enforces it). A request that gets no answer (refused, reset, timed out) raises ``HttpError``, a
TransientError; an answer of any status is returned for the caller to judge. Status codes are compared
with ``http.HTTPStatus``, whose members equal httpx's ``codes``.

httpx reference: https://www.python-httpx.org/api/ and https://www.python-httpx.org/exceptions/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias
from urllib.parse import quote, urlencode

import httpx

from dualbus.shared.errors import HttpError

__all__ = [
    "AsyncHttpClient",
    "HttpClient",
    "HttpError",
    "Response",
    "async_http_client",
    "built_response",
    "http_client",
    "query_string",
    "request",
    "send",
]

# See query_string.
_QUERY_SAFE = "$,'()*:@/"

Response: TypeAlias = httpx.Response
HttpClient: TypeAlias = httpx.Client
AsyncHttpClient: TypeAlias = httpx.AsyncClient


def _translated(exc: httpx.HTTPError, what: str) -> HttpError:
    kind = type(exc).__name__
    return HttpError(f"{what} failed: {kind}: {exc}", kind=kind)


def http_client(
    *, base_url: str = "", headers: Mapping[str, str] | None = None, timeout: float | None = None
) -> HttpClient:
    """A synchronous client (close it, or use it as a context manager); requests go through :func:`send`."""
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def async_http_client(*, timeout: float, max_connections: int | None = None) -> AsyncHttpClient:
    """An asynchronous client; ``max_connections`` also keeps that many alive (httpx keeps 20 by default)."""
    if max_connections is None:
        return httpx.AsyncClient(timeout=timeout)
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(timeout=timeout, limits=limits)


def send(
    client: HttpClient,
    method: str,
    url: str,
    **options: Any,  # noqa: ANN401 - httpx's request options (json, data, params, headers, ...)
) -> Response:
    """One request on ``client``; HttpError when no answer came."""
    try:
        return client.request(method, url, **options)
    except httpx.HTTPError as exc:
        raise _translated(exc, f"{method} {url}") from exc


def request(
    method: str,
    url: str,
    *,
    timeout: float,
    **options: Any,  # noqa: ANN401 - httpx's request options (json, data, params, headers, ...)
) -> Response:
    """One request on a connection of its own; HttpError when no answer came."""
    try:
        return httpx.request(method, url, timeout=timeout, **options)
    except httpx.HTTPError as exc:
        raise _translated(exc, f"{method} {url}") from exc


def query_string(params: Mapping[str, str]) -> str:
    """``params`` encoded as a URL query (without the ``?``), OData's own characters left as they are.

    ``$select=a,b`` and ``$filter=A eq 'x'`` keep their ``$ , ' ( ) * : @ /`` (all allowed in a query by
    RFC 3986, as OData's URL conventions write them); a space goes as ``%20``, ``+ & = # ;`` and the rest
    encoded. httpx's own params encoding encodes those characters too, and took 22 µs for a ``$select`` of
    16 columns, which a sink sends with every read (2.8 µs here).
    """
    return urlencode(params, quote_via=quote, safe=_QUERY_SAFE)


def built_response(
    method: str, url: str, status: int, *, headers: list[tuple[str, str]], content: bytes
) -> Response:
    """An answer read from elsewhere (one part of an OData ``$batch``), tied to the request it answers."""
    return _PartResponse(method, url, status, headers=headers, content=content)


class _PartResponse(httpx.Response):
    """A ``$batch`` part's answer whose request is built when first asked for, and whose body is the bytes
    it was given.

    Only error messages read the request, and parsing its URL was about half of what each part cost to
    build. Given ``content=``, httpx reads the body back through its decoders and chunker, which was most
    of the rest: the body comes as a stream instead, and is kept as read already (httpx's own cache of a
    read body, which ``content``, ``read`` and every iteration answer from, as for a ``content=`` one).
    """

    def __init__(
        self, method: str, url: str, status: int, *, headers: list[tuple[str, str]], content: bytes
    ) -> None:
        super().__init__(status, headers=headers, stream=httpx.ByteStream(content))
        self._asked = (method, url)
        self._content = content

    @property
    def request(self) -> httpx.Request:
        """The request this part answers."""
        if self._request is None:
            self._request = httpx.Request(*self._asked)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value
