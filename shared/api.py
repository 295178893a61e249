"""An OData client for F&O and Dataverse: bearer tokens, timeouts, httpx errors translated at the boundary.

Tokens come from a ``TokenProvider``; ``shared.identity`` makes one from settings with azure-identity.

Status codes map onto dualbus's error tree here, in one place: 429 → ThrottledError (with Retry-After),
5xx / timeouts / connection errors → TransientError, 401 → one token refresh then TransientError (a
credential problem is fixed by an operator, so messages must wait rather than be dead-lettered). Other
statuses are returned to the caller, who knows what a 404 or a 412 means for its request.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import orjson

from dualbus.shared.errors import ThrottledError, TransientError
from dualbus.shared.http import Response, query_string

__all__ = [
    "ApiClient",
    "ApiReader",
    "TokenProvider",
    "dataverse_user_id",
    "error_message",
    "parse_retry_after",
]

_OK = 200
_UNAUTHORIZED = 401
_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500


class TokenProvider(Protocol):
    """Gives a bearer token for one API; ``refresh`` forces a new one."""

    async def token(self, *, refresh: bool = False) -> str:
        """A valid access token."""
        ...


class ApiReader(Protocol):
    """What a check that only reads needs of an API (``ApiClient`` has it; tests give scripted answers)."""

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None) -> Response:
        """One request; TransientError when the service cannot answer now."""
        ...


class ApiClient:
    """Authenticated requests against one OData API, relative to its base URL."""

    def __init__(self, base_url: str, tokens: TokenProvider, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._http = http

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,  # noqa: ANN401 - any JSON value
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; raise TransientError/ThrottledError for what a retry can fix."""
        body = orjson.dumps(json) if json is not None else content
        merged = {"Accept": "application/json", **(headers or {})}
        if json is not None:
            merged.setdefault("Content-Type", "application/json")
        response = await self._send(method, path, body, merged, params, refresh=False)
        if response.status_code == _UNAUTHORIZED:
            response = await self._send(method, path, body, merged, params, refresh=True)
        _raise_for_transient(response)
        return response

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        params: dict[str, str] | None,
        *,
        refresh: bool,
    ) -> httpx.Response:
        token = await self._tokens.token(refresh=refresh)
        url = path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"
        if params:
            url += ("&" if "?" in url else "?") + query_string(params)
        try:
            return await self._http.request(
                method, url, content=body, headers={**headers, "Authorization": f"Bearer {token}"}
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"{method} {path} timed out") from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"{method} {path} failed: {type(exc).__name__}: {exc}") from exc


def _raise_for_transient(response: httpx.Response) -> None:
    status = response.status_code
    what = f"{response.request.method} {response.request.url.path}"
    if status == _TOO_MANY_REQUESTS:
        raise ThrottledError(
            f"{what} was throttled: {error_message(response)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= _SERVER_ERROR:
        raise TransientError(
            f"{what} failed with {status}: {error_message(response)}",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status == _UNAUTHORIZED:
        raise TransientError(f"{what} was refused (401) even with a fresh token: check the credentials")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent, invalid,
    or no wait at all (0, negative, a date already past).

    A Retry-After asking for no wait is taken as none given: honoured, it made every retry of a throttled
    or failing request go at once (a date made past by a little clock skew did the same), so the retry
    policy's own growing backoff applies instead.
    """
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return seconds if seconds > 0 else None


def error_message(response: httpx.Response) -> str:
    """The OData error's code and message (``{"error": {"code", "message"}}``), else the status line.

    F&O answers "An error has occurred." as the message and puts what went wrong (the Infolog lines of a
    refused write) in ``innererror.message``; that is the part worth showing.
    """
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict) or not error.get("message"):
        return f"HTTP {response.status_code} {response.reason_phrase}".strip()
    inner = error.get("innererror")
    message = str(error["message"])
    if isinstance(inner, dict) and inner.get("message"):
        message = str(inner["message"])
    code = error.get("code")
    return f"{code}: {message}" if code else message


async def dataverse_user_id(api: ApiClient) -> str | None:
    """The Dataverse user id ``api`` acts as (``WhoAmI``), or None when Dataverse does not answer it.

    https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami
    """
    response = await api.request("GET", "WhoAmI")
    user = response.json().get("UserId") if response.status_code == _OK else None
    return str(user) if user else None
