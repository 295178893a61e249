"""A twin of Dynamics 365 Finance and Operations' OData data entities and data events, on loopback HTTP.

Usage::

    with start_fo(page_size=500) as fo, fo.client("dualbus") as client:   # token for a registered app
        client.post("/data/Currencies", json={"CurrencyCode": "USD", "Name": "US dollar"})
        client.get("/data/CustomersV3", params={"cross-company": "true", "$filter": "dataAreaId eq 'usmf'"})
        client.get("/data/$metadata")                                                  # CSDL of every entity
        fo.twin.add_webhook("http://127.0.0.1:8123/hook", ["CustomersV3"])          # data events

The entities are exactly those of ``d365/fo`` plus dualbus's extension fields (:data:`ENTITIES`); writes are
checked against their fields, types, enums and relations. ``start_fo(prepared=False)`` serves the
published fields alone, as a tenant without the extension: requests naming the extension fields are refused,
and neither ``$metadata`` nor the data events show them. Throttling is off unless
``throttling=ThrottlingConfig(...)``.
"""

from dualbus.sandbox.fo.app import FoTwin, create_app
from dualbus.sandbox.fo.context import (
    DEFAULT_ORGANIZATION,
    Organization,
    data_event_payload,
    virtual_entity_id,
)
from dualbus.sandbox.fo.endpoints import ServiceBusEndpoint, WebhookEndpoint
from dualbus.sandbox.fo.entities import ENTITIES, ENTITY_IDS, entity_named
from dualbus.sandbox.fo.events import Delivery, DeliveryError, EventEndpoint, EventPublisher
from dualbus.sandbox.fo.server import DEFAULT_AUDIENCE, DEFAULT_CLIENTS, WORKLOAD_CLIENTS, FoHandle, start_fo
from dualbus.sandbox.fo.store import Change, FoStore
from dualbus.sandbox.fo.throttling import Priority, ThrottlingConfig

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_CLIENTS",
    "DEFAULT_ORGANIZATION",
    "ENTITIES",
    "ENTITY_IDS",
    "WORKLOAD_CLIENTS",
    "Change",
    "Delivery",
    "DeliveryError",
    "EventEndpoint",
    "EventPublisher",
    "FoHandle",
    "FoStore",
    "FoTwin",
    "Organization",
    "Priority",
    "ServiceBusEndpoint",
    "ThrottlingConfig",
    "WebhookEndpoint",
    "create_app",
    "data_event_payload",
    "entity_named",
    "start_fo",
    "virtual_entity_id",
]
