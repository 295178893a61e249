"""The administration API at run time: create, get, update, list, delete of every entity kind with the SDK.

Entities made here must behave as configured ones do, and survive kill -9 on a data directory.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import time
from collections.abc import Iterator

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.servicebus import ServiceBusMessage, ServiceBusSubQueue
from azure.servicebus._common import mgmt_handlers
from azure.servicebus._common.constants import (
    REQUEST_RESPONSE_ADD_RULE_OPERATION,
    REQUEST_RESPONSE_GET_RULES_OPERATION,
    REQUEST_RESPONSE_REMOVE_RULE_OPERATION,
)
from azure.servicebus.management import (
    CorrelationRuleFilter,
    ServiceBusAdministrationClient,
    SqlRuleAction,
    SqlRuleFilter,
    TrueRuleFilter,
)

from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process, start_subprocess
from dualbus.sandbox.servicebus.sas import DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, make_token
from tests.contract.conftest import quick_client

pytestmark = [
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@pytest.fixture(scope="module")
def bare() -> Iterator[EmulatorThread]:
    """An emulator with no configured entity: everything is made through the administration API."""
    with start_in_process() as handle:
        yield handle


@pytest.fixture
def admin(bare: EmulatorThread) -> Iterator[ServiceBusAdministrationClient]:
    """The SDK's administration client; the emulator's certificate is from the sandbox's CA."""
    with ServiceBusAdministrationClient.from_connection_string(
        bare.connection_string, connection_verify=False
    ) as client:
        yield client


def test_queue_create_get_update_list_delete(admin):
    """A queue goes through its whole life with Azure's answers: 409 twice, 404 once gone."""
    created = admin.create_queue("life", max_delivery_count=7, lock_duration=datetime.timedelta(seconds=30))
    assert (created.name, created.max_delivery_count) == ("life", 7)
    assert created.lock_duration == datetime.timedelta(seconds=30)
    with pytest.raises(ResourceExistsError):
        admin.create_queue("life")
    queue = admin.get_queue("life")
    assert queue.requires_session is False
    assert queue.default_message_time_to_live > datetime.timedelta(days=10_000), "Azure's default: no expiry"
    queue.max_delivery_count = 4
    queue.user_metadata = "kept as written"
    admin.update_queue(queue)
    updated = admin.get_queue("life")
    assert (updated.max_delivery_count, updated.user_metadata) == (4, "kept as written")
    admin.update_queue(updated, max_delivery_count=3)
    assert admin.get_queue("life").max_delivery_count == 3
    assert "life" in [q.name for q in admin.list_queues()]
    admin.delete_queue("life")
    with pytest.raises(ResourceNotFoundError):
        admin.get_queue("life")
    with pytest.raises(ResourceNotFoundError):
        admin.delete_queue("life")
    with pytest.raises(ResourceNotFoundError):
        admin.update_queue(updated)


def test_listing_pages_with_skip_and_top(admin):
    """Lists come in pages of ``max_page_size`` and the SDK follows the next link to the end."""
    names = [f"page-{i:02d}" for i in range(7)]
    for name in names:
        admin.create_topic(name)
    pages = list(admin.list_topics(max_page_size=3).by_page())
    assert [len(list(page)) for page in pages] == [3, 3, 1]
    assert [t.name for t in admin.list_topics(max_page_size=2)] == names
    for name in names:
        admin.delete_topic(name)


def test_bad_input_is_refused_with_400(admin):
    """Values outside Azure's ranges, forwarding to nowhere and session changes are refused."""
    with pytest.raises(HttpResponseError) as caught:
        admin.create_queue("bad-lock", lock_duration=datetime.timedelta(minutes=10))
    assert caught.value.status_code == 400
    with pytest.raises(HttpResponseError) as caught:
        admin.create_queue("bad-forward", forward_to="nowhere")
    assert caught.value.status_code == 400
    admin.create_queue("plain")
    with pytest.raises(HttpResponseError) as caught:
        admin.update_queue(admin.get_queue("plain"), requires_session=True)
    assert caught.value.status_code == 400
    # Duplicate detection too is set at creation only, on queues and topics alike (Azure: "You can't enable
    # or disable duplicate detection after the queue or topic is created").
    with pytest.raises(HttpResponseError, match="RequiresDuplicateDetection") as caught:
        admin.update_queue(admin.get_queue("plain"), requires_duplicate_detection=True)
    assert caught.value.status_code == 400
    admin.delete_queue("plain")
    admin.create_topic("plain-topic", requires_duplicate_detection=True)
    with pytest.raises(HttpResponseError, match="RequiresDuplicateDetection") as caught:
        admin.update_topic(admin.get_topic("plain-topic"), requires_duplicate_detection=False)
    assert caught.value.status_code == 400
    admin.update_topic(admin.get_topic("plain-topic"), max_size_in_megabytes=2048)  # other changes pass
    admin.delete_topic("plain-topic")


def test_rules_create_get_update_list_delete(admin):
    """A subscription starts with $Default; rules of every filter kind are added, read back and removed."""
    admin.create_topic("ruled")
    admin.create_subscription("ruled", "sub")
    [default] = admin.list_rules("ruled", "sub")
    assert default.name == "$Default"
    assert isinstance(default.filter, TrueRuleFilter)
    admin.create_rule("ruled", "sub", "sql", filter=SqlRuleFilter("area = @area", parameters={"@area": "eu"}))
    admin.create_rule(
        "ruled",
        "sub",
        "corr",
        filter=CorrelationRuleFilter(label="order", properties={"weight": 3, "kind": "x"}),
        action=SqlRuleAction("SET stamped = 'yes'"),
    )
    with pytest.raises(ResourceExistsError):
        admin.create_rule("ruled", "sub", "sql")
    sql = admin.get_rule("ruled", "sub", "sql")
    assert isinstance(sql.filter, SqlRuleFilter)
    assert (sql.filter.sql_expression, dict(sql.filter.parameters)) == ("area = @area", {"@area": "eu"})
    corr = admin.get_rule("ruled", "sub", "corr")
    assert isinstance(corr.filter, CorrelationRuleFilter)
    assert (corr.filter.label, dict(corr.filter.properties)) == ("order", {"weight": 3, "kind": "x"})
    assert corr.action.sql_expression == "SET stamped = 'yes'"
    corr.filter = SqlRuleFilter("weight > 1")
    admin.update_rule("ruled", "sub", corr)
    assert admin.get_rule("ruled", "sub", "corr").filter.sql_expression == "weight > 1"
    assert [r.name for r in admin.list_rules("ruled", "sub")] == ["$Default", "sql", "corr"]
    admin.delete_rule("ruled", "sub", "sql")
    with pytest.raises(ResourceNotFoundError):
        admin.get_rule("ruled", "sub", "sql")
    with pytest.raises(HttpResponseError) as caught:
        admin.create_rule("ruled", "sub", "bad", filter=SqlRuleFilter("area LIKE"))
    assert caught.value.status_code == 400
    admin.delete_topic("ruled")
    with pytest.raises(ResourceNotFoundError):
        admin.get_subscription("ruled", "sub")


def test_entities_made_at_run_time_behave_like_configured_ones(admin, bare):
    """Sessions, filters with parameters and actions, forwarding, TTL with dead-lettering, max delivery."""
    admin.create_queue("rt-target")
    admin.create_queue("rt-sessions", requires_session=True)
    admin.create_queue(
        "rt-expiring", default_message_time_to_live="PT1S", dead_lettering_on_message_expiration=True
    )
    admin.create_queue("rt-twice", max_delivery_count=2, lock_duration="PT5S")
    admin.create_topic("rt-events")
    admin.create_subscription("rt-events", "eu", forward_to="rt-target")
    admin.delete_rule("rt-events", "eu", "$Default")
    admin.create_rule(
        "rt-events",
        "eu",
        "eu-only",
        filter=SqlRuleFilter("area = @area", parameters={"@area": "eu"}),
        action=SqlRuleAction("SET region = 'emea'"),
    )
    admin.create_subscription("rt-events", "none")
    admin.delete_rule("rt-events", "none", "$Default")  # a subscription without rules takes nothing
    with quick_client(bare.connection_string) as client:
        with client.get_topic_sender("rt-events") as sender:
            sender.send_messages(
                [ServiceBusMessage("eu", application_properties={"area": "eu"}), ServiceBusMessage("us")]
            )
        with client.get_queue_receiver("rt-target", max_wait_time=5) as receiver:
            [forwarded] = receiver.receive_messages(max_message_count=5, max_wait_time=5)
            assert str(forwarded) == "eu"
            assert forwarded.application_properties[b"region"] == b"emea"
            receiver.complete_message(forwarded)
        assert admin.get_subscription_runtime_properties("rt-events", "none").active_message_count == 0
        with client.get_queue_sender("rt-sessions") as sender:
            sender.send_messages(ServiceBusMessage("in a session", session_id="s1"))
            with pytest.raises(Exception, match="session"):
                sender.send_messages(ServiceBusMessage("no session"))
        with client.get_queue_receiver("rt-sessions", session_id="s1") as receiver:
            [message] = receiver.receive_messages(max_wait_time=5)
            receiver.complete_message(message)
        with client.get_queue_sender("rt-expiring") as sender:
            sender.send_messages(ServiceBusMessage("short-lived"))
        with client.get_queue_receiver("rt-expiring", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            [dead] = dlq.receive_messages(max_wait_time=5)
            assert dead.dead_letter_reason == "TTLExpiredException"
        with client.get_queue_sender("rt-twice") as sender:
            sender.send_messages(ServiceBusMessage("poison"))
        with client.get_queue_receiver("rt-twice") as receiver:
            for _ in range(2):
                [message] = receiver.receive_messages(max_wait_time=5)
                receiver.abandon_message(message)
        with client.get_queue_receiver("rt-twice", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
            [dead] = dlq.receive_messages(max_wait_time=5)
            assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"


def test_deleting_a_queue_drops_its_messages_and_a_new_one_starts_empty(admin, bare):
    """A deleted and re-created queue has none of the old messages."""
    admin.create_queue("reborn")
    with quick_client(bare.connection_string) as client:
        with client.get_queue_sender("reborn") as sender:
            sender.send_messages([ServiceBusMessage("old") for _ in range(3)])
        admin.delete_queue("reborn")
        admin.create_queue("reborn")
        assert admin.get_queue_runtime_properties("reborn").active_message_count == 0
        with client.get_queue_receiver("reborn") as receiver:
            assert receiver.receive_messages(max_wait_time=1) == []
    admin.delete_queue("reborn")


def test_a_token_for_one_entity_cannot_forward_it_into_another(bare):
    """Forwarding needs rights on the destination too (Azure: Manage on both entities): a token scoped to
    ``src`` may not make ``src`` forward into ``victim``, which it cannot reach itself."""
    base = f"http://{bare.host}:{bare.port}"
    expiry = int(time.time()) + 300
    root = make_token(base, DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, expiry)
    scoped = make_token(f"sb://{bare.host}:{bare.port}/src", DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, expiry)
    queue = (
        '<entry xmlns="http://www.w3.org/2005/Atom"><content type="application/xml">'
        '<QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect">'
        "{}</QueueDescription></content></entry>"
    )
    forwarding = queue.format("<ForwardTo>victim</ForwardTo>")
    with httpx.Client(base_url=base, timeout=10) as http:
        for name in ("src", "victim"):
            assert (
                http.put(f"/{name}", content=queue.format(""), headers={"Authorization": root}).status_code
                == 201
            )
        assert http.get("/victim", headers={"Authorization": scoped}).status_code == 401
        refused = http.put("/src", content=forwarding, headers={"Authorization": scoped, "If-Match": "*"})
        assert refused.status_code == 401
        assert "ForwardTo" in refused.text
        # Its own queue's other settings it may change, and a token for the namespace may forward.
        own = queue.format("<MaxDeliveryCount>7</MaxDeliveryCount>")
        assert (
            http.put("/src", content=own, headers={"Authorization": scoped, "If-Match": "*"}).status_code
            == 200
        )
        assert (
            http.put("/src", content=forwarding, headers={"Authorization": root, "If-Match": "*"}).status_code
            == 200
        )
        for name in ("src", "victim"):
            http.delete(f"/{name}", headers={"Authorization": root})


def test_plain_http_answers_with_the_same_key_checks(bare):
    """A client asking for plain HTTP gets the same API, and the same 401 without a valid token."""
    base = f"http://{bare.host}:{bare.port}"
    token = make_token(
        f"http://{bare.host}:{bare.port}", DEFAULT_KEY_NAME, DEFAULT_KEY_VALUE, int(time.time()) + 300
    )
    body = (
        '<entry xmlns="http://www.w3.org/2005/Atom"><content type="application/xml">'
        '<QueueDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect">'
        "<MaxDeliveryCount>6</MaxDeliveryCount></QueueDescription></content></entry>"
    )
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.put("/over-http", content=body).status_code == 401
        created = http.put("/over-http", content=body, headers={"Authorization": token})
        assert created.status_code == 201
        assert "<MaxDeliveryCount>6</MaxDeliveryCount>" in created.text
        again = http.put("/over-http", content=body, headers={"Authorization": token})
        assert again.status_code == 409
        assert http.get("/over-http", headers={"Authorization": token}).status_code == 200
        # An update replaces the description: what it leaves out goes back to Azure's default (10).
        partial = body.replace("<MaxDeliveryCount>6</MaxDeliveryCount>", "<LockDuration>PT30S</LockDuration>")
        updated = http.put("/over-http", content=partial, headers={"Authorization": token, "If-Match": "*"})
        assert updated.status_code == 200
        assert "<MaxDeliveryCount>10</MaxDeliveryCount>" in updated.text
        assert "<LockDuration>PT30S</LockDuration>" in updated.text
        assert http.delete("/over-http", headers={"Authorization": token}).status_code == 200
        assert http.get("/over-http", headers={"Authorization": token}).status_code == 404


def test_rule_operations_on_the_management_node(admin, bare):
    """add-rule, enumerate-rules and remove-rule on a subscription's $management node change its routing."""
    admin.create_topic("amqp-rules")
    admin.create_subscription("amqp-rules", "sub")
    with quick_client(bare.connection_string) as client:
        with client.get_subscription_receiver("amqp-rules", "sub") as receiver:
            receiver._mgmt_request_response(
                REQUEST_RESPONSE_ADD_RULE_OPERATION,
                {
                    "rule-name": "orders",
                    "rule-description": {"correlation-filter": {"label": "order", "properties": {"n": 1}}},
                },
                mgmt_handlers.default,
            )
            receiver._mgmt_request_response(
                REQUEST_RESPONSE_REMOVE_RULE_OPERATION, {"rule-name": "$Default"}, mgmt_handlers.default
            )
            listed = receiver._mgmt_request_response(
                REQUEST_RESPONSE_GET_RULES_OPERATION, {"top": 10, "skip": 0}, mgmt_handlers.default
            )
            with pytest.raises(Exception, match="could not be found"):
                receiver._mgmt_request_response(
                    REQUEST_RESPONSE_REMOVE_RULE_OPERATION, {"rule-name": "missing"}, mgmt_handlers.default
                )
        with client.get_topic_sender("amqp-rules") as sender:
            sender.send_messages(
                [
                    ServiceBusMessage("skipped"),
                    ServiceBusMessage("taken", subject="order", application_properties={"n": 1}),
                ]
            )
        with client.get_subscription_receiver("amqp-rules", "sub") as receiver:
            received = receiver.receive_messages(max_message_count=5, max_wait_time=3)
            assert [str(m) for m in received] == ["taken"]
    [entry] = listed[b"rules"]
    description = entry[b"rule-description"]  # a described list: filter, action, name, created at
    assert description.descriptor == 0x0000013700000004
    assert description[2] == b"orders"
    assert [r.name for r in admin.list_rules("amqp-rules", "sub")] == ["orders"]


_CONFIG = {"UserConfig": {"Namespaces": [{"Name": "sbemulatorns", "Queues": [{"Name": "configured"}]}]}}


def test_definitions_survive_kill_and_override_the_configuration(tmp_path: pathlib.Path):
    """Entities and rules made at run time, and a configured queue deleted, stay so after kill -9."""
    config = tmp_path / "Config.json"
    config.write_text(json.dumps(_CONFIG))
    data = tmp_path / "data"
    # Start-up is given a minute: on a loaded machine a child interpreter takes a while to import the SDK.
    first = start_subprocess(config_file=config, data_dir=data, timeout=60)
    try:
        with ServiceBusAdministrationClient.from_connection_string(
            first.connection_string, connection_verify=False
        ) as admin:
            admin.create_queue("made", requires_session=True, max_delivery_count=4)
            admin.create_topic("made-topic")
            admin.create_subscription("made-topic", "sub", lock_duration="PT20S")
            admin.create_rule("made-topic", "sub", "only-eu", filter=SqlRuleFilter("area = 'eu'"))
            admin.delete_rule("made-topic", "sub", "$Default")
            admin.delete_queue("configured")
        with quick_client(first.connection_string) as client, client.get_topic_sender("made-topic") as sender:
            sender.send_messages(ServiceBusMessage("kept", application_properties={"area": "eu"}))
    finally:
        first.kill()
    second = start_subprocess(config_file=config, data_dir=data, timeout=60)
    try:
        with ServiceBusAdministrationClient.from_connection_string(
            second.connection_string, connection_verify=False
        ) as admin:
            made = admin.get_queue("made")
            assert (made.requires_session, made.max_delivery_count) == (True, 4)
            assert admin.get_subscription("made-topic", "sub").lock_duration == datetime.timedelta(seconds=20)
            assert [r.name for r in admin.list_rules("made-topic", "sub")] == ["only-eu"]
            with pytest.raises(ResourceNotFoundError):
                admin.get_queue("configured")
        with (
            quick_client(second.connection_string) as client,
            client.get_subscription_receiver("made-topic", "sub") as receiver,
        ):
            [message] = receiver.receive_messages(max_wait_time=5)
            assert str(message) == "kept"
            receiver.complete_message(message)
    finally:
        second.stop()
