"""The twin's own configuration API for data events: what F&O's Business events page does by hand.

``POST /_sandbox/data-events`` with ``{"kind": "webhook", "url": ..., "entities": [...]}`` (optionally
``"headers": {name: value}`` for HttpHeader authentication or ``"code": key`` for a WebhookKey) or
``{"kind": "servicebus", "connection_string": ..., "entity_name": ..., "entity_kind": "topic"|"queue",
"entities": [...]}`` activates the data events of those entities on a new endpoint; ``GET`` lists the
endpoints with their delivery counts (never their secrets). It needs a bearer token like ``/data`` does.
See https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/301380e278316e838bd17501ff7335509d46632c/articles/fin-ops-core/dev-itpro/business-events/data-events.md
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dualbus.sandbox.fo.endpoints import ServiceBusEndpoint, WebhookEndpoint
from dualbus.sandbox.fo.entities import ENTITIES
from dualbus.sandbox.fo.errors import BadRequestError
from dualbus.sandbox.fo.events import EventEndpoint, EventPublisher

__all__ = ["ADMIN_PREFIX", "data_events_endpoint", "endpoint_from_json"]

# Not "/sandbox/": that is where the default tenant's token endpoint lives, which must stay open.
ADMIN_PREFIX = "/_sandbox/"


def endpoint_from_json(body: dict[str, Any]) -> tuple[EventEndpoint, list[str]]:
    """The endpoint and entity sets a configuration document asks for; BadRequestError if malformed."""
    entities = body.get("entities")
    if not isinstance(entities, list) or not entities or not all(e in ENTITIES for e in entities):
        raise BadRequestError(f"'entities' must list entity sets among: {', '.join(ENTITIES)}")
    kind = body.get("kind")
    if kind == "webhook" and isinstance(body.get("url"), str):
        return _webhook(body), entities
    if kind == "servicebus" and isinstance(body.get("connection_string"), str):
        entity_kind = body.get("entity_kind", "topic")
        if entity_kind not in ("topic", "queue") or not isinstance(body.get("entity_name"), str):
            raise BadRequestError("a servicebus endpoint needs 'entity_name' and 'entity_kind' topic|queue")
        endpoint = ServiceBusEndpoint(body["connection_string"], body["entity_name"], kind=entity_kind)
        return endpoint, entities
    raise BadRequestError("'kind' must be 'webhook' (with 'url') or 'servicebus' (with 'connection_string')")


def _webhook(body: dict[str, Any]) -> WebhookEndpoint:
    headers, code = body.get("headers", {}), body.get("code")
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise BadRequestError("'headers' must map header names to string values")
    if code is not None and not isinstance(code, str):
        raise BadRequestError("'code' must be a string (the WebhookKey)")
    return WebhookEndpoint(body["url"], headers=headers, code=code)


async def data_events_endpoint(request: Request) -> Response:
    """``GET`` lists the configured endpoints; ``POST`` adds one."""
    events: EventPublisher = request.app.state.fo.events
    if request.method == "POST":
        try:
            body = orjson.loads(await request.body())
            endpoint, entities = endpoint_from_json(body if isinstance(body, dict) else {})
        except (orjson.JSONDecodeError, BadRequestError) as exc:
            return JSONResponse({"error": {"code": "", "message": str(exc)}}, status_code=400)
        events.add_endpoint(endpoint, entities)
        return JSONResponse({"name": endpoint.name, "entities": entities}, status_code=201)
    stats = events.stats
    listed = [
        {
            "name": name,
            "entities": entities,
            "delivered": stats.delivered.get(name, 0),
            "given_up": stats.given_up.get(name, 0),
        }
        for name, entities in events.bindings()
    ]
    return JSONResponse({"value": listed})
