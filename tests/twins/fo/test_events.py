"""Data events: creates, updates and deletes of activated entities reach a webhook, in order, retried.

Payload fields as in the business events schema (BusinessEventId, ControlNumber, EventId, EventTime, ...):
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/business-events/data-events
"""

from __future__ import annotations

import httpx
import pytest

from sandbox.fo import FoHandle, FoStore, WebhookEndpoint
from sandbox.fo.errors import ConflictError
from tests.twins.fo.conftest import KEY_PATH, Webhook, customer


def test_create_update_delete_delivered_in_order(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """Three changes of one customer arrive in commit order with the documented envelope fields."""
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    client.post("/data/CustomersV3", json=customer("US-001"))
    client.patch(KEY_PATH, json={"CreditLimit": 10})
    client.delete(KEY_PATH)
    client.post("/data/Currencies", json={"CurrencyCode": "EUR", "Name": "Euro"})
    assert fo.twin.events.flush(timeout=10)
    kinds = [(e["BusinessEventId"], e["ChangeType"]) for e in webhook.received]
    assert kinds == [
        ("CustomersV3_Create", "Create"),
        ("CustomersV3_Update", "Update"),
        ("CustomersV3_Delete", "Delete"),
    ]
    created, updated, deleted = webhook.received
    assert created["ControlNumber"] < updated["ControlNumber"] < deleted["ControlNumber"]
    assert created["BusinessEventLegalEntity"] == "USMF"
    assert created["EventTime"].startswith("/Date(")
    assert updated["ChangedFields"] == ["CreditLimit"]
    assert updated["CustomerAccount"] == "US-001"
    assert deleted["dataAreaId"] == "usmf"
    assert "OrganizationName" not in deleted
    assert "@odata.etag" not in created
    assert len({e["EventId"] for e in webhook.received}) == 3


def test_event_is_delivered_again_after_webhook_fails(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """When the webhook answers 500 twice, the same event is sent again until it is accepted."""
    webhook.fail_first = 2
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    client.post("/data/CustomersV3", json=customer("US-001"))
    assert fo.twin.events.flush(timeout=10)
    assert webhook.calls == 3
    assert [e["CustomerAccount"] for e in webhook.received] == ["US-001"]
    assert fo.twin.events.stats.delivered[webhook.url] == 1


def test_unreachable_webhook_is_given_up_after_bounded_attempts(fo: FoHandle, client: httpx.Client) -> None:
    """A webhook that never answers is retried a bounded number of times, then counted as given up."""
    endpoint = WebhookEndpoint("http://127.0.0.1:9/nothing", timeout=0.5)
    fo.twin.events.add_endpoint(endpoint, ["CustomersV3"])
    client.post("/data/CustomersV3", json=customer("US-001"))
    assert fo.twin.events.flush(timeout=20)
    assert fo.twin.events.stats.given_up[endpoint.name] == 1
    assert fo.twin.events.stats.attempts[endpoint.name] == 5


def test_changes_inside_a_failed_change_set_emit_nothing(fo: FoHandle, webhook: Webhook) -> None:
    """Events are emitted on commit only: a rolled-back write sends no event."""
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    store = fo.twin.store
    with pytest.raises(ConflictError):
        _insert_twice(store)
    assert fo.twin.events.flush(timeout=5)
    assert webhook.received == []
    assert store.count("CustomersV3") == 0


def _insert_twice(store: FoStore) -> None:
    with store.transaction():
        store.insert("CustomersV3", customer("US-001"), modified_by="dualbus")
        store.insert("CustomersV3", customer("US-001"), modified_by="dualbus")


def test_data_events_configured_over_http(fo: FoHandle, client: httpx.Client, webhook: Webhook) -> None:
    """POST /_sandbox/data-events activates a webhook for an entity; GET lists it with its deliveries."""
    config = {"kind": "webhook", "url": webhook.url, "entities": ["VendorsV2"]}
    assert client.post("/_sandbox/data-events", json=config).status_code == 201
    assert (
        client.post("/_sandbox/data-events", json={"kind": "ftp", "entities": ["VendorsV2"]}).status_code
        == 400
    )
    assert httpx.post(fo.url + "/_sandbox/data-events", json=config).status_code == 401
    client.post("/data/VendorsV2", json={"dataAreaId": "usmf", "VendorAccountNumber": "V-1"})
    assert fo.twin.events.flush(timeout=10)
    listed = client.get("/_sandbox/data-events").json()["value"]
    assert listed == [{"name": webhook.url, "entities": ["VendorsV2"], "delivered": 1, "given_up": 0}]
    assert webhook.received[0]["VendorAccountNumber"] == "V-1"
