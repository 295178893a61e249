"""Data events: committed changes of activated entities reach a webhook as RemoteExecutionContexts, in order.

F&O proxies data events through Dataverse; the webhook gets the context as JSON with Dataverse's headers:
https://github.com/MicrosoftDocs/dynamics-365-unified-operations-public/blob/301380e278316e838bd17501ff7335509d46632c/articles/fin-ops-core/dev-itpro/business-events/data-events.md
https://github.com/MicrosoftDocs/powerapps-docs/blob/0180169dbe9064b4367f6a002128454acccedc4d/powerapps-docs/developer/data-platform/use-webhooks.md
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from dualbus.sandbox.fo import ENTITY_IDS, FoHandle, FoStore, WebhookEndpoint
from dualbus.sandbox.fo.errors import ConflictError
from dualbus.sandbox.identity import user_id_for
from tests.twins.fo.conftest import KEY_PATH, Webhook, customer

OPTION_SET = "OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts"


def _parameters(event: dict[str, Any]) -> dict[str, Any]:
    return {p["key"]: p["value"] for p in event["InputParameters"]}


def _attributes(entity: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: a["value"] for a in entity["Attributes"]}


def _changes(fo: FoHandle, client: httpx.Client, webhook: Webhook) -> list[dict[str, Any]]:
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    client.post(
        "/data/CustomersV3",
        json=customer("US-001", OnHoldStatus="Invoice", AddressValidTo="2026-01-31T00:00:00Z"),
    )
    client.patch(KEY_PATH, json={"CreditLimit": 10, "OrganizationName": "Org US-001"})
    client.delete(KEY_PATH)
    client.post("/data/Currencies", json={"CurrencyCode": "EUR", "Name": "Euro"})
    assert fo.twin.events.flush(timeout=10)
    return webhook.received


def test_create_update_delete_arrive_in_order_as_virtual_table_events(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """Three changes of one customer arrive in commit order as OnExternal* messages of its mserp_ table."""
    created, updated, deleted = _changes(fo, client, webhook)
    assert [e["MessageName"] for e in (created, updated, deleted)] == [
        "OnExternalCreated",
        "OnExternalUpdated",
        "OnExternalDeleted",
    ]
    assert {e["PrimaryEntityName"] for e in (created, updated, deleted)} == {"mserp_custcustomerv3entity"}
    assert len({e["OperationId"] for e in (created, updated, deleted)}) == 3
    assert created["InitiatingUserId"] == created["UserId"] == user_id_for("dualbus")
    assert created["OperationCreatedOn"].startswith("/Date(")
    assert (created["Depth"], created["Stage"], created["Mode"], created["IsolationMode"]) == (1, 40, 1, 1)


def test_row_id_is_the_entity_id_and_recid_guid(fo: FoHandle, client: httpx.Client, webhook: Webhook) -> None:
    """PrimaryEntityId and Target.Id are one GUID for the row's life: entity id first, RecId in the last 8."""
    events = _changes(fo, client, webhook)
    ids = {e["PrimaryEntityId"] for e in events} | {_parameters(e)["Target"]["Id"] for e in events}
    assert len(ids) == 1
    raw = uuid.UUID(ids.pop()).bytes
    assert int.from_bytes(raw[:4], "big") == ENTITY_IDS["CustomersV3"]
    assert int.from_bytes(raw[8:], "little") > 0


def test_create_target_holds_every_written_field(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """A create's Target carries every field as an mserp_ attribute: enums as option sets, dates /Date()/."""
    created = _changes(fo, client, webhook)[0]
    assert set(_parameters(created)) == {"Target"}
    target = _parameters(created)["Target"]
    attributes = _attributes(target)
    assert attributes["mserp_customeraccount"] == "US-001"
    assert attributes["mserp_dataareaid"] == "usmf"
    assert attributes["mserp_customergroupid"] == "10"
    assert attributes["mserp_onholdstatus"] == {"__type": OPTION_SET, "Value": 200000001}
    assert attributes["mserp_addressvalidto"] == "/Date(1769817600000)/"
    assert target["FormattedValues"] == [{"key": "mserp_onholdstatus", "value": "Invoice"}]
    assert target["LogicalName"] == "mserp_custcustomerv3entity"
    assert not {"mserp_modifieddatetime", "mserp_modifiedby", "@odata.etag"} & set(attributes)


def test_a_null_date_is_left_out_of_the_event(fo: FoHandle, client: httpx.Client, webhook: Webhook) -> None:
    """A date F&O holds as its null (1900-01-01, whatever the time) is removed from the event's record, as
    data-events.md says of datetime properties with a NULL value; a real date stays."""
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    body = customer("US-001", AddressValidTo="1900-01-01T12:00:00Z", AddressValidFrom="2026-01-31T00:00:00Z")
    assert client.post("/data/CustomersV3", json=body).status_code == 201
    assert fo.twin.events.flush(timeout=10)
    attributes = _attributes(_parameters(webhook.received[0])["Target"])
    assert "mserp_addressvalidto" not in attributes
    assert attributes["mserp_addressvalidfrom"] == "/Date(1769817600000)/"


def test_update_target_holds_changed_fields_and_preimage_the_old_row(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """An update's Target has only what changed; PreImage is the whole row before the change."""
    parameters = _parameters(_changes(fo, client, webhook)[1])
    assert _attributes(parameters["Target"]) == {"mserp_creditlimit": 10}
    before = _attributes(parameters["PreImage"])
    assert before["mserp_customeraccount"] == "US-001"
    assert "mserp_creditlimit" not in before


def test_delete_target_is_the_id_alone_with_a_preimage(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """A delete's Target has no attributes, only the Id; PreImage carries the removed row."""
    parameters = _parameters(_changes(fo, client, webhook)[2])
    assert parameters["Target"]["Attributes"] == []
    assert parameters["Target"]["Id"]
    assert _attributes(parameters["PreImage"])["mserp_creditlimit"] == 10


def test_webhook_gets_dataverse_headers_and_configured_auth(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """Each POST carries the documented headers, the HttpHeader auth values and the WebhookKey code."""
    auth = {"x-functions-key": "s3cret"}
    fo.twin.events.add_endpoint(WebhookEndpoint(webhook.url, headers=auth, code="k3y"), ["CustomersV3"])
    client.post("/data/CustomersV3", json=customer("US-001"))
    assert fo.twin.events.flush(timeout=10)
    (request,) = webhook.requests
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-ms-dynamics-entity-name"] == "mserp_custcustomerv3entity"
    assert headers["x-ms-dynamics-request-name"] == "OnExternalCreated"
    assert headers["x-ms-dynamics-organization"]
    assert headers["x-ms-correlation-request-id"] == request.body["CorrelationId"]
    assert uuid.UUID(headers["x-request-id"])
    assert headers["x-functions-key"] == "s3cret"
    assert request.query == {"code": "k3y"}


def test_event_is_delivered_again_after_webhook_fails(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """When the webhook answers 500 twice, the same event is sent again until it is accepted."""
    webhook.fail_first = 2
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    client.post("/data/CustomersV3", json=customer("US-001"))
    assert fo.twin.events.flush(timeout=10)
    assert webhook.calls == 3
    assert [e["MessageName"] for e in webhook.received] == ["OnExternalCreated"]
    assert fo.twin.events.stats.delivered[webhook.url] == 1


def test_unreachable_webhook_is_given_up_after_three_retries(fo: FoHandle, client: httpx.Client) -> None:
    """A webhook that never answers gets one attempt and F&O's default 3 retries, then is counted given up."""
    endpoint = WebhookEndpoint("http://127.0.0.1:9/nothing", timeout=0.5)
    fo.twin.events.add_endpoint(endpoint, ["CustomersV3"])
    client.post("/data/CustomersV3", json=customer("US-001"))
    assert fo.twin.events.flush(timeout=20)
    assert fo.twin.events.stats.given_up[endpoint.name] == 1
    assert fo.twin.events.stats.attempts[endpoint.name] == 4


@pytest.mark.usefixtures("client")  # its reference rows
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
    """POST /_sandbox/data-events activates a webhook with auth options; GET lists it without secrets."""
    config = {
        "kind": "webhook",
        "url": webhook.url,
        "entities": ["VendorGroups"],
        "headers": {"x-key": "v"},
        "code": "c",
    }
    assert client.post("/_sandbox/data-events", json=config).status_code == 201
    bad = [
        {"kind": "ftp", "entities": ["VendorGroups"]},
        {**config, "headers": {"x-key": 1}},
        {**config, "code": 5},
    ]
    assert [client.post("/_sandbox/data-events", json=b).status_code for b in bad] == [400, 400, 400]
    assert httpx.post(fo.url + "/_sandbox/data-events", json=config).status_code == 401
    client.post(
        "/data/VendorGroups", json={"dataAreaId": "usmf", "VendorGroupId": "V1", "Description": "Local"}
    )
    assert fo.twin.events.flush(timeout=10)
    listed = client.get("/_sandbox/data-events").json()["value"]
    assert listed == [{"name": webhook.url, "entities": ["VendorGroups"], "delivered": 1, "given_up": 0}]
    (request,) = webhook.requests
    assert (request.headers["x-key"], request.query["code"]) == ("v", "c")
    assert _attributes(_parameters(request.body)["Target"])["mserp_vendorgroupid"] == "V1"


def test_an_event_past_256kb_reaches_a_webhook_without_its_record(
    fo: FoHandle, client: httpx.Client, webhook: Webhook
) -> None:
    """Past 256 KB Dataverse leaves InputParameters, the images and ParentContext out of a webhook's body
    and says so in x-ms-dynamics-msg-size-exceeded; the row's id and the message stay. A smaller event is
    whole."""
    fo.twin.add_webhook(webhook.url, ["CustomersV3"])
    client.post("/data/CustomersV3", json=customer("US-001"))
    client.post("/data/CustomersV3", json=customer("US-002", InvoiceAddressStreet="x" * 300_000))
    assert fo.twin.events.flush(timeout=10)
    small, large = webhook.requests
    assert "x-ms-dynamics-msg-size-exceeded" not in small.headers
    assert _parameters(small.body)["Target"]["Attributes"]
    assert "x-ms-dynamics-msg-size-exceeded" in large.headers
    assert not {"InputParameters", "PreEntityImages", "PostEntityImages", "ParentContext"} & set(large.body)
    assert large.body["MessageName"] == "OnExternalCreated"
    assert large.body["PrimaryEntityId"] != small.body["PrimaryEntityId"]
    assert large.headers["x-ms-dynamics-entity-name"] == "mserp_custcustomerv3entity"
