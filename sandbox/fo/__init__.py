"""A twin of Dynamics 365 Finance and Operations' OData data entities and data events, on loopback HTTP.

Usage::

    with start_fo(page_size=500) as fo, fo.client("dualbus") as client:   # token for a registered app
        client.post("/data/CustomersV3", json={"dataAreaId": "usmf", "CustomerAccount": "US-001"})
        client.get("/data/CustomersV3", params={"cross-company": "true", "$filter": "dataAreaId eq 'usmf'"})
        fo.twin.add_webhook("http://127.0.0.1:8123/hook", ["CustomersV3"])          # data events

Entities are declared in :data:`ENTITIES`; throttling is off unless ``throttling=ThrottlingConfig(...)``.
"""

from sandbox.fo.app import FoTwin, create_app
from sandbox.fo.endpoints import ServiceBusEndpoint, WebhookEndpoint
from sandbox.fo.entities import ENTITIES, EntityDef
from sandbox.fo.events import DeliveryError, EventEndpoint, EventPublisher, data_event_payload
from sandbox.fo.server import DEFAULT_AUDIENCE, DEFAULT_CLIENTS, FoHandle, start_fo
from sandbox.fo.store import Change, FoStore
from sandbox.fo.throttling import Priority, ThrottlingConfig

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_CLIENTS",
    "ENTITIES",
    "Change",
    "DeliveryError",
    "EntityDef",
    "EventEndpoint",
    "EventPublisher",
    "FoHandle",
    "FoStore",
    "FoTwin",
    "Priority",
    "ServiceBusEndpoint",
    "ThrottlingConfig",
    "WebhookEndpoint",
    "create_app",
    "data_event_payload",
    "start_fo",
]
