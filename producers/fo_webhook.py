"""The HTTP webhook F&O delivers data events to: answered 2xx only once the events are published.

F&O's HTTPS endpoint kind POSTs each event as a JSON object; a non-2xx answer makes F&O retry it, so the
endpoint answers 200 only after the envelopes are on Service Bus, 400 for a payload it can never use, and
503 (with Retry-After) while Service Bus or F&O is unavailable.
See https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/managing-business-event-endpoints
"""

from __future__ import annotations

import logging

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from producers.errors import SourceError
from producers.fo_events import FoEventHandler
from shared.errors import TransientError

__all__ = ["DEFAULT_PATH", "webhook_app"]

_log = logging.getLogger(__name__)
DEFAULT_PATH = "/fo/events"
_RETRY_AFTER_SECONDS = "5"


def webhook_app(handler: FoEventHandler, *, path: str = DEFAULT_PATH) -> Starlette:
    """A starlette app taking data events (one object or a list of them) on ``POST path``."""

    async def receive(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        payloads = body if isinstance(body, list) else [body]
        try:
            published = await handler.handle(payloads)
        except SourceError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except TransientError as exc:
            _log.warning("data event not published yet, F&O will retry: %s", exc)
            return JSONResponse(
                {"error": "temporarily unavailable"},
                status_code=503,
                headers={"Retry-After": _RETRY_AFTER_SECONDS},
            )
        return JSONResponse({"published": published})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "entities": list(handler.entities)})

    return Starlette(
        routes=[Route(path, receive, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    )
