"""The HTTPS endpoint F&O data events reach as a Dataverse webhook: answered 2xx only once published.

With the Power Platform integration, an F&O HTTPS endpoint becomes a Dataverse webhook, which POSTs the
RemoteExecutionContext as JSON; a non-2xx answer fails the delivery, and Dataverse tries once more only
after 502, 503 or 504. So the endpoint answers 200 only after the changes are on Service Bus, 400 for a
payload it can never use, and 503 with Retry-After while Service Bus or F&O is unavailable:
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
The caller authenticates the way the webhook's registration says; dualbus takes the WebhookKey kind, a
``code`` query string parameter, and "any request to the endpoint configured should fail when the
authentication options passed in the request do not match. This is the responsibility of the endpoint.":
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/register-web-hook.md
"""

from __future__ import annotations

import hmac
import logging

import orjson
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dualbus.producers.errors import InvalidDataEventError, SourceError
from dualbus.producers.fo_events import parse_data_event
from dualbus.producers.fo_handler import FoEventHandler
from dualbus.shared.errors import TransientError

__all__ = ["DEFAULT_PATH", "webhook_app"]

_log = logging.getLogger(__name__)
DEFAULT_PATH = "/fo/events"
_RETRY_AFTER_SECONDS = "5"
_BAD_REQUEST = 400
_UNAUTHORIZED = 401
_UNAVAILABLE = 503


def webhook_app(
    handler: FoEventHandler, *, path: str = DEFAULT_PATH, key: SecretStr | None = None
) -> Starlette:
    """A starlette app taking one RemoteExecutionContext per ``POST path?code=<key>``."""
    if key is None:
        _log.warning("the F&O webhook accepts events without a key: set DUALBUS_PRODUCER__FO_WEBHOOK_KEY")

    async def receive(request: Request) -> Response:
        if key is not None and not _authorized(request, key):
            return JSONResponse({"error": "missing or wrong code"}, status_code=_UNAUTHORIZED)
        try:
            event = parse_data_event(orjson.loads(await request.body()))
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=_BAD_REQUEST)
        except InvalidDataEventError as exc:
            return JSONResponse({"error": str(exc)}, status_code=_BAD_REQUEST)
        try:
            published = await handler.handle([event])
        except (TransientError, SourceError) as exc:
            # F&O answering what it should not is fixed on F&O's side: the event is worth sending again.
            _log.warning("data event %s not published yet: %s", event.operation_id, exc)
            return JSONResponse(
                {"error": "temporarily unavailable"},
                status_code=_UNAVAILABLE,
                headers={"Retry-After": _RETRY_AFTER_SECONDS},
            )
        return JSONResponse({"published": published})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "entities": list(handler.entities)})

    return Starlette(
        routes=[Route(path, receive, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    )


def _authorized(request: Request, key: SecretStr) -> bool:
    given = request.query_params.get("code", "")
    # Constant time: how much of a guess matched must not show in the answer's timing.
    return hmac.compare_digest(given.encode(), key.get_secret_value().encode())
