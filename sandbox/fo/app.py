"""The F&O twin's starlette app: ``/data/...`` OData, ``/data/$batch``, ``/data/$metadata``, a token endpoint.

Every ``/data`` request needs a bearer token for the twin's audience (401 otherwise), as the real
environment's Microsoft Entra ID protection does.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/services-home-page
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dualbus.d365 import FO_VERSION_FIELD
from dualbus.sandbox.fo.admin import ADMIN_PREFIX, data_events_endpoint
from dualbus.sandbox.fo.batch import BatchPart, parse_batch, run_batch
from dualbus.sandbox.fo.context import DEFAULT_ORGANIZATION, Organization
from dualbus.sandbox.fo.endpoints import WebhookEndpoint
from dualbus.sandbox.fo.entities import served_entities
from dualbus.sandbox.fo.errors import ODataError, TooManyRequestsError
from dualbus.sandbox.fo.events import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_WAIT_SECONDS,
    EventEndpoint,
    EventPublisher,
)
from dualbus.sandbox.fo.metadata import metadata_document
from dualbus.sandbox.fo.routing import no_route, read_again, unroutable
from dualbus.sandbox.fo.service import ODataRequest, ODataService, Reply, error_body
from dualbus.sandbox.fo.store import Change, FoStore
from dualbus.sandbox.fo.throttling import Throttle, ThrottlingConfig
from dualbus.sandbox.identity import TOKEN_ROUTE, BearerAuthMiddleware, Caller, TokenIssuer, token_endpoint
from dualbus.sandbox.odata_prefer import parse_prefer
from dualbus.sandbox.write_log import WriteLog, writes_endpoint

__all__ = ["FoTwin", "create_app"]

# The OData preference that lets a batch run on past a failed request (sandbox/fo/batch.py); OData 4.01
# also spells it without the prefix.
_CONTINUE_ON_ERROR = "odata.continue-on-error"
_CONTINUE_ON_ERROR_NAMES = frozenset({_CONTINUE_ON_ERROR, "continue-on-error"})


@dataclass(slots=True)
class FoTwin:
    """The twin's moving parts, reachable from the app as ``app.state.fo``."""

    store: FoStore
    service: ODataService
    throttle: Throttle
    events: EventPublisher
    prepared: bool  # whether the tenant has dualbus's extension fields (which entities it serves)
    writes: WriteLog = field(default_factory=WriteLog)
    _closed: bool = field(default=False, repr=False)

    def add_webhook(
        self, url: str, entities: Iterable[str], *, headers: Mapping[str, str] | None = None
    ) -> WebhookEndpoint:
        """Activate data events of ``entities`` towards an HTTP(S) webhook, sending ``headers`` each time."""
        endpoint = WebhookEndpoint(url, headers=headers)
        self.events.add_endpoint(endpoint, entities)
        return endpoint

    def close(self) -> None:
        """Stop event delivery and close the store."""
        if not self._closed:
            self._closed = True
            self.events.close()
            self.store.close()


def create_app(
    *,
    issuer: TokenIssuer,
    audience: str,
    database: Path | None = None,
    page_size: int = 10_000,
    default_company: str = "USMF",
    companies: Mapping[str, str] | None = None,
    throttling: ThrottlingConfig | None = None,
    event_endpoints: Iterable[tuple[EventEndpoint, Iterable[str]]] = (),
    event_backoff_seconds: float = DEFAULT_RETRY_WAIT_SECONDS,
    event_retries: int = DEFAULT_RETRIES,
    event_threads: int = 1,
    organization: Organization = DEFAULT_ORGANIZATION,
    prepared: bool = True,
) -> Starlette:
    """Build the twin. ``companies`` maps a client id to its default company (``default_company`` else).

    ``event_backoff_seconds`` is the wait between a failed event's retries, ``event_retries`` how many;
    ``event_threads`` is F&O's business events "Processing threads" (1 to 4, sandbox/fo/events.py).
    ``prepared=False`` serves a tenant without dualbus's extension fields (docs/deploy.md): a request
    naming them is refused as F&O refuses any property an entity lacks, and neither ``$metadata`` nor the data
    events show them.
    """
    store = FoStore(database)
    entities = served_entities(prepared=prepared)
    events = EventPublisher(
        store,
        entities=entities,
        organization=organization,
        retries=event_retries,
        retry_wait_seconds=event_backoff_seconds,
        processing_threads=event_threads,
    )
    twin = FoTwin(
        store=store,
        service=ODataService(
            store,
            page_size,
            default_company,
            dict(companies or {}),
            entities=entities,
        ),
        prepared=prepared,
        throttle=Throttle(throttling or ThrottlingConfig()),
        events=events,
    )
    for endpoint, activated in event_endpoints:
        twin.events.add_endpoint(endpoint, activated)
    store.subscribe(lambda change: _log_write(twin.writes, change))
    routes = [
        Route(TOKEN_ROUTE, token_endpoint(issuer), methods=["POST"]),
        Route("/data/$batch", _batch, methods=["POST"]),
        Route("/data/$metadata", _metadata, methods=["GET"]),
        Route("/data/{resource:path}", _data, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route(f"{ADMIN_PREFIX}data-events", data_events_endpoint, methods=["GET", "POST"]),
        Route(
            f"{ADMIN_PREFIX}writes", writes_endpoint(lambda request: _twin(request).writes), methods=["GET"]
        ),
    ]
    middleware = [
        Middleware(BearerAuthMiddleware, issuer=issuer, audience=audience, protected_prefix=prefix)
        for prefix in ("/data", ADMIN_PREFIX)
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.fo = twin
    return app


def _log_write(log: WriteLog, change: Change) -> None:
    operation = "delete" if change.change_type == "Delete" else "upsert"
    version = None if operation == "delete" else change.row.get(FO_VERSION_FIELD)
    log.add(
        change.entity,
        change.keys,
        operation,
        change.modified_by,
        version,
        fields={name: change.row.get(name) for name in change.changed_fields},
    )


def _twin(request: Request) -> FoTwin:
    twin: FoTwin = request.app.state.fo
    return twin


def _caller(request: Request) -> str:
    caller: Caller = request.state.caller
    return caller.client_id


def _http(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))


def _throttled(exc: TooManyRequestsError) -> Response:
    headers = {"Retry-After": str(exc.retry_after), "Content-Type": "application/json"}
    return Response(error_body(exc), status_code=429, headers=headers)


async def _data(request: Request) -> Response:
    twin, caller = _twin(request), _caller(request)
    try:
        twin.throttle.admit(caller)
    except TooManyRequestsError as exc:
        return _throttled(exc)
    base = str(request.base_url).rstrip("/")
    body = await request.body()
    params = dict(request.query_params)
    resource = request.path_params["resource"]
    if unroutable(resource):
        return no_route(f"{base}/data/{resource}")
    resource = read_again(resource)
    if_match = request.headers.get("if-match")
    odata = ODataRequest(request.method, resource, params, body, caller, base, if_match)
    return _http(twin.service.execute(odata))


async def _metadata(request: Request) -> Response:
    headers = {"Content-Type": "application/xml", "OData-Version": "4.0"}
    return Response(_metadata_of(prepared=_twin(request).prepared), status_code=200, headers=headers)


@cache
def _metadata_of(*, prepared: bool) -> bytes:
    """The CSDL of a prepared or an unprepared tenant's entities, built once (about 13 ms) when first asked
    for, not by every twin started."""
    return metadata_document(served_entities(prepared=prepared))


async def _batch(request: Request) -> Response:
    twin, caller = _twin(request), _caller(request)
    try:
        twin.throttle.admit(caller)
        items = parse_batch(await request.body(), request.headers.get("content-type", ""))
    except TooManyRequestsError as exc:
        return _throttled(exc)
    except ODataError as exc:
        return Response(error_body(exc), status_code=exc.status, headers={"Content-Type": "application/json"})
    base = str(request.base_url).rstrip("/")

    def execute(part: BatchPart) -> Reply:
        odata = ODataRequest(part.method, part.resource, part.params, part.body, caller, base, part.if_match)
        return twin.service.execute(odata)

    preferences = parse_prefer(", ".join(request.headers.getlist("prefer")))
    # Bare, or given any value but false.
    continue_on_error = any(preferences.get(name, "false") != "false" for name in _CONTINUE_ON_ERROR_NAMES)
    body, content_type = run_batch(twin.store, items, execute, continue_on_error=continue_on_error)
    headers = {"Content-Type": content_type, "OData-Version": "4.0"}
    if continue_on_error:
        headers["Preference-Applied"] = _CONTINUE_ON_ERROR
    return Response(body, status_code=200, headers=headers)
