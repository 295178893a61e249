"""The HTTPS endpoint F&O data events reach as a Dataverse webhook: answered 2xx once the event is kept.

With the Power Platform integration, an F&O HTTPS endpoint becomes a Dataverse webhook, which POSTs the
RemoteExecutionContext as JSON; a non-2xx answer fails the delivery, and Dataverse tries once more only
after 502, 503 or 504. So the endpoint answers 200 only once the event is kept durably in the producer's
inbox (``producers.fo_inbox``, which publishes it), 400 for a payload it can never use, and 503 with
Retry-After when it cannot keep it:
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
The caller authenticates the way the webhook's registration says; dualbus takes the WebhookKey kind, a
``code`` query string parameter, and "any request to the endpoint configured should fail when the
authentication options passed in the request do not match. This is the responsibility of the endpoint.":
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/register-web-hook.md
A body over ``MAX_BODY_BYTES`` is answered 413 before it is all read: held whole, one request of any size
could run the webhook's process out of memory, and the producer stops with it.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Protocol

import orjson
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dualbus.producers.checkpoints import CheckpointError
from dualbus.producers.errors import InvalidDataEventError
from dualbus.producers.fo_events import FoDataEvent
from dualbus.producers.settings import WEBHOOK_KEY_VARIABLE, check_webhook_key

__all__ = ["DEFAULT_PATH", "MAX_BODY_BYTES", "EventKeeper", "webhook_app"]

_log = logging.getLogger(__name__)
DEFAULT_PATH = "/fo/events"
_RETRY_AFTER_SECONDS = "5"
_BAD_REQUEST = 400
_UNAUTHORIZED = 401
_TOO_LARGE = 413
_UNAVAILABLE = 503
# Dataverse keeps a webhook's body to 256 KB: "When the size of the entire HTTP payload exceeds 256KB, the
# x-ms-dynamics-msg-size-exceeded header will be included" and ParentContext, InputParameters and the
# entity images are removed:
# https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
# 1 MiB leaves room four times over (whether Dataverse counts KB or KiB, with its headers or without), and is
# still little memory for the webhook's process.
MAX_BODY_BYTES = 1024 * 1024
_DIGITS = re.compile(r"[0-9]+")


class EventKeeper(Protocol):
    """Where the webhook keeps events: the inbox (``FoEventInbox``), or its process's side of it."""

    @property
    def entities(self) -> tuple[str, ...]:
        """The F&O entity sets whose events are published."""
        ...

    def take(self, body: bytes) -> FoDataEvent:
        """Keep one event's body; InvalidDataEventError or a JSON error when it is no event, CheckpointError
        when it cannot be kept."""
        ...


def webhook_app(inbox: EventKeeper, *, path: str = DEFAULT_PATH, key: SecretStr | None = None) -> Starlette:
    """A starlette app taking one RemoteExecutionContext per ``POST path?code=<key>`` into ``inbox``."""
    check_webhook_key(key)  # an empty key would be matched by a request without ``code``
    if key is None:
        _log.warning("the F&O webhook accepts events without a key: set %s", WEBHOOK_KEY_VARIABLE)

    async def receive(request: Request) -> Response:
        if key is not None and not _authorized(request, key):
            return JSONResponse({"error": "missing or wrong code"}, status_code=_UNAUTHORIZED)
        body = await _body_within(request, MAX_BODY_BYTES)
        if body is None:
            _log.warning("a data event request over %d bytes was refused", MAX_BODY_BYTES)
            # Connection: close makes the server hang up after the answer instead of reading the rest.
            return JSONResponse(
                {"error": f"the body is over {MAX_BODY_BYTES} bytes"},
                status_code=_TOO_LARGE,
                headers={"Connection": "close"},
            )
        try:
            event = inbox.take(body)
        except orjson.JSONDecodeError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=_BAD_REQUEST)
        except InvalidDataEventError as exc:
            return JSONResponse({"error": str(exc)}, status_code=_BAD_REQUEST)
        except CheckpointError as exc:
            _log.warning("a data event could not be kept: %s", exc)
            return JSONResponse(
                {"error": "temporarily unavailable"},
                status_code=_UNAVAILABLE,
                headers={"Retry-After": _RETRY_AFTER_SECONDS},
            )
        return JSONResponse({"accepted": event.operation_id})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "entities": list(inbox.entities)})

    return Starlette(
        routes=[Route(path, receive, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    )


def _authorized(request: Request, key: SecretStr) -> bool:
    given = request.query_params.get("code", "")
    # Constant time: how much of a guess matched must not show in the answer's timing.
    return hmac.compare_digest(given.encode(), key.get_secret_value().encode())


async def _body_within(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it is over ``limit`` bytes: by its Content-Length before any of it
    is read, or counted as it streams (a chunked body says no length)."""
    if _declared_over(request.headers.get("content-length"), limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None  # what was read is let go, and the rest never read
        chunks.append(chunk)
    return b"".join(chunks)


def _declared_over(length: str | None, limit: int) -> bool:
    # A malformed length (which the server refuses anyway) is left to the count while streaming. Its digits
    # are counted before int() reads them: int() refuses more than 4,300.
    if length is None or not _DIGITS.fullmatch(length):
        return False
    digits = length.lstrip("0")
    return len(digits) > len(str(limit)) or int(digits or "0") > limit
