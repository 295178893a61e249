"""The Dataverse twin as a starlette app: the Web API subset under ``/api/data/v9.2/`` and a token endpoint.

Every API request needs a bearer token for the app's audience (401 otherwise, from BearerAuthMiddleware); the
caller's user id (the token's ``oid``) is whom the service protection limits count (and report in the
``x-ms-ratelimit-*`` headers of every API response, see ``ratelimit_headers``) and whom ``_modifiedby_value``
names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dualbus.d365 import DvTable
from dualbus.sandbox.dataverse.batch import run_batch
from dualbus.sandbox.dataverse.errors import DataverseApiError
from dualbus.sandbox.dataverse.limits import ServiceProtection, ServiceProtectionLimits
from dualbus.sandbox.dataverse.messages import ApiRequest, ApiResponse, error_response
from dualbus.sandbox.dataverse.ratelimit_headers import ratelimit_headers
from dualbus.sandbox.dataverse.service import DataverseService
from dualbus.sandbox.dataverse.store import Store
from dualbus.sandbox.dataverse.tables import TABLES
from dualbus.sandbox.identity import TOKEN_ROUTE, BearerAuthMiddleware, Caller, TokenIssuer, token_endpoint
from dualbus.sandbox.write_log import writes_endpoint

__all__ = ["create_app"]

_SEVEN_DAYS = 7 * 24 * 3600.0
_METHODS = ["GET", "POST", "PATCH", "DELETE"]
# The twin's own endpoints, outside the Web API (the write log), as on the F&O twin.
_ADMIN_PREFIX = "/_sandbox/"


def create_app(
    *,
    issuer: TokenIssuer,
    audience: str,
    limits: ServiceProtectionLimits | None,
    database: Path | None = None,
    tables: Mapping[str, DvTable] = TABLES,
    change_retention_seconds: float = _SEVEN_DAYS,
    clock: Callable[[], float] = time.time,
    untracked_tables: frozenset[str] = frozenset(),
) -> Starlette:
    """Build the twin; ``limits=None`` switches service protection off, ``database`` keeps data on disk.

    With service protection off, API responses carry no ``x-ms-ratelimit-*`` headers: no limit to report.

    ``untracked_tables``: entity sets whose change tracking is not enabled. None by default: a deployment
    enables it on every synced table (docs/deploy.md), and the twin serves only those tables.

    ``app.state.store`` is the twin's store (``close()`` it after the server stops when a database is used).
    """
    store = Store(tables, database=database, change_retention_seconds=change_retention_seconds, clock=clock)
    service = DataverseService(tables=tables, store=store, clock=clock, untracked_tables=untracked_tables)
    protection = ServiceProtection(limits) if limits is not None else None

    async def api(request: Request) -> Response:
        caller: Caller = request.state.caller
        if protection is None:
            return await _serve(service, request, caller)
        try:
            protection.admit(caller.user_id)
        except DataverseApiError as exc:
            return _reporting(protection, caller, _to_starlette(error_response(exc)))
        started = time.perf_counter()
        try:
            # Reported before release: the request being answered has not finished, so its time is not spent.
            return _reporting(protection, caller, await _serve(service, request, caller))
        finally:
            protection.release(caller.user_id, time.perf_counter() - started)

    app = Starlette(
        routes=[
            Route(TOKEN_ROUTE, token_endpoint(issuer), methods=["POST"]),
            Route("/api/data/v9.2/{path:path}", api, methods=_METHODS),
            Route(f"{_ADMIN_PREFIX}writes", writes_endpoint(lambda _request: store.writes), methods=["GET"]),
        ],
        middleware=[
            Middleware(BearerAuthMiddleware, issuer=issuer, audience=audience, protected_prefix=prefix)
            for prefix in ("/api/data/", _ADMIN_PREFIX)
        ],
    )
    app.state.store = store
    return app


async def _serve(service: DataverseService, request: Request, caller: Caller) -> Response:
    api_request = ApiRequest(
        method=request.method,
        path=request.path_params["path"],
        query=dict(request.query_params),
        headers=_combined(request),
        body=await request.body(),
        user_id=caller.user_id,
    )
    context = service.context(str(request.base_url).rstrip("/"))
    if api_request.path == "$batch" and api_request.method == "POST":
        try:
            return _to_starlette(run_batch(service, context, api_request))
        except DataverseApiError as exc:
            return _to_starlette(error_response(exc))
    return _to_starlette(service.handle(context, api_request))


def _combined(request: Request) -> dict[str, str]:
    """The request's headers by lower-case name, a repeated header's values joined by commas (RFC 9110
    section 5.3): a client may send ``Prefer: odata.maxpagesize=3`` and
    ``Prefer: odata.include-annotations=*`` as two lines, as https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/count-rows
    shows."""
    combined: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        combined[key] = f"{combined[key]}, {value}" if key in combined else value
    return combined


def _reporting(protection: ServiceProtection, caller: Caller, response: Response) -> Response:
    """``response`` with the caller's remaining limits in the ``x-ms-ratelimit-*`` headers."""
    response.headers.update(ratelimit_headers(protection.remaining(caller.user_id)))
    return response


def _to_starlette(response: ApiResponse) -> Response:
    return Response(content=response.body, status_code=response.status, headers=response.headers)
