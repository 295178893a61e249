"""The official JavaScript SDK (@azure/service-bus 7.9 on Node) against the emulator, feature by feature.

Each test runs one scenario of js/scenarios.cjs in its own Node process and checks what it observed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from dualbus.sandbox.servicebus.config import (
    CorrelationFilterConfig,
    EmulatorConfig,
    NamespaceConfig,
    QueueConfig,
    RuleConfig,
    SqlFilterConfig,
    SubscriptionConfig,
    TopicConfig,
)
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from tests.contract.node import NodeSdk, install_js_sdk

pytestmark = pytest.mark.contract

_PLAIN = [
    "single",
    "array",
    "batch",
    "no-id",
    "complete",
    "abandon",
    "dead-letter",
    "defer",
    "schedule",
    "peek",
    "peek-only",
    "renew",
    "dedup-off",
]


def _config() -> EmulatorConfig:
    queues = [QueueConfig(name=name, lock_duration=timedelta(seconds=30)) for name in _PLAIN]
    queues += [
        QueueConfig(name="max-delivery", max_delivery_count=2),
        QueueConfig(name="ttl", dead_lettering_on_message_expiration=True),
        QueueConfig(
            name="dedup",
            requires_duplicate_detection=True,
            duplicate_detection_history_time_window=timedelta(minutes=1),
        ),
        QueueConfig(name="sessions", requires_session=True),
        QueueConfig(name="session-state", requires_session=True),
        QueueConfig(name="session-locked", requires_session=True),
        QueueConfig(name="receiver-kind-sessions", requires_session=True),
        QueueConfig(name="receiver-kind-plain"),
        QueueConfig(name="forward-target"),
        QueueConfig(name="forward-source", forward_to="forward-target"),
    ]
    topic = TopicConfig(
        name="events",
        subscriptions=[
            SubscriptionConfig(name="all"),
            SubscriptionConfig(
                name="customers",
                rules=[RuleConfig(name="subject", filter=CorrelationFilterConfig(label="customer"))],
            ),
            SubscriptionConfig(
                name="big-eu",
                rules=[
                    RuleConfig(name="sql", filter=SqlFilterConfig(expression="amount > 100 AND area = 'eu'"))
                ],
            ),
        ],
    )
    return EmulatorConfig(namespaces=[NamespaceConfig(name="sbemulatorns", queues=queues, topics=[topic])])


@pytest.fixture(scope="module")
def node_sdk() -> NodeSdk:
    """The JavaScript SDK, installed from npm on first use."""
    return install_js_sdk()


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    """An in-process emulator with this module's entities."""
    with start_in_process(config=_config()) as handle:
        yield handle


@pytest.fixture
def js(node_sdk: NodeSdk, emulator: EmulatorThread) -> Any:
    """Run a scenario against the emulator; fail with the SDK's error if it raised one."""

    def run(scenario: str, **arguments: Any) -> dict[str, Any]:
        result = node_sdk.run(emulator.connection_string, scenario, **arguments)
        assert "error" not in result, f"the JavaScript SDK raised: {result}"
        return result

    return run


def test_single_message_round_trip(js):
    """One message sent alone arrives once, with a message id."""
    result = js("sendSingle", queue="single")
    assert result["bodies"] == ["single"]
    assert all(result["ids"])


def test_array_send_stores_each_message(js):
    """sendMessages([...]) is a batch transfer (message format 0x80013700) of three messages."""
    assert js("sendArray", queue="array")["bodies"] == ["a", "b", "c"]


def test_message_batch_stores_each_message(js):
    """A ServiceBusMessageBatch (whose envelope starts with an empty header) is three messages."""
    result = js("sendBatch", queue="batch")
    assert result["bodies"] == ["x", "y", "z"]
    assert result["kinds"] == ["batched"] * 3


def test_message_without_id_gets_one_and_can_be_settled(js):
    """A message sent without a MessageId is stamped with one, as Azure does, so it can be completed."""
    result = js("noMessageId", queue="no-id")
    assert result["messageId"]
    assert result["left"] == 0


def test_complete_removes_the_message(js):
    """A completed message is not delivered again."""
    assert js("complete", queue="complete") == {"body": "done", "again": 0}


def test_abandon_counts_a_delivery(js):
    """JavaScript's abandon (modified, undeliverable-here false) redelivers with the count raised."""
    result = js("abandon", queue="abandon")
    assert (result["first"], result["second"]) == (0, 1)


def test_dead_letter_keeps_reason_and_description(js):
    """A dead-lettered message is in the dead-letter queue with the reason and description given."""
    result = js("deadLetter", queue="dead-letter")
    assert result == {"body": "poison", "reason": "Unreadable", "description": "no schema"}


def test_defer_then_receive_deferred(js):
    """JavaScript's defer (modified, undeliverable-here true) defers: only receiveDeferredMessages gets it."""
    result = js("defer", queue="defer")
    assert result == {"meanwhile": 0, "body": "later", "state": "deferred", "after": "MessageNotFound"}


def test_schedule_and_cancel(js):
    """A scheduled message waits for its time; a cancelled one never comes."""
    result = js("scheduleAndCancel", queue="schedule")
    assert result["peeked"] == ["scheduled"]
    assert result["early"] == 0
    assert result["bodies"] == ["kept"]


def test_peek_leaves_messages_in_place(js):
    """Peeked messages are still there to receive."""
    assert js("peek", queue="peek") == {"peeked": ["p1", "p2"], "drained": ["p1", "p2"]}


def test_management_request_on_a_connection_without_other_links(js):
    """A client whose only link to the entity is $management (token for <entity>/$management) is answered."""
    assert js("peekOnly", queue="peek-only") == {"peeked": []}


def test_message_lock_renewal_extends_the_lock(js):
    """renewMessageLock moves the lock's end later."""
    result = js("renewLock", queue="renew")
    assert result["after"] > result["before"]


def test_expired_message_is_dead_lettered(js):
    """A message past its time to live is not delivered; with dead-lettering on expiry it is in the DLQ."""
    result = js("ttl", queue="ttl")
    assert result == {"live": 0, "dead": ["short-lived"], "reason": ["TTLExpiredException"]}


def test_abandons_reach_max_delivery_count(js):
    """Two JavaScript abandons on a queue with MaxDeliveryCount 2 move the message to dead-letter."""
    result = js("maxDelivery", queue="max-delivery", attempts=3)
    assert result["counts"] == [0, 1]
    assert result["more"] == 0
    assert result["dead"] == ["flaky"]
    assert result["reason"] == ["MaxDeliveryCountExceeded"]


def test_duplicate_detection_drops_a_repeated_id(js):
    """With duplicate detection, a second message with the same id is dropped."""
    assert js("duplicates", queue="dedup")["bodies"] == ["first", "other"]


def test_subscription_filters(js):
    """SQL and correlation rules choose what each subscription gets."""
    result = js("filters", topic="events", subscriptions=["all", "customers", "big-eu"])
    assert result == {
        "all": ["big-eu", "customer", "small-eu"],
        "customers": ["customer"],
        "big-eu": ["big-eu"],
    }


def test_auto_forward(js):
    """A message sent to a queue that forwards arrives in the target queue."""
    assert js("autoForward", source="forward-source", target="forward-target")["bodies"] == ["forwarded"]


def test_sessions_accept_specific_and_next_and_renew(js):
    """acceptSession gets the named session's messages in order; renew extends it; acceptNextSession
    gets the other one."""
    result = js("sessionAccept", queue="sessions")
    assert result["s1"] == ["s1-a", "s1-b"]
    assert result["sessionIds"] == ["s1", "s1"]
    assert result["renewed"] > result["lockedUntil"]
    assert (result["nextId"], result["next"]) == ("s2", ["s2-a"])


def test_session_state(js):
    """Session state set by one receiver is read back by the next."""
    assert js("sessionState", queue="session-state") == {"empty": None, "state": "step-2"}


def test_session_locked_by_another_receiver(js):
    """A second acceptSession for a held session raises SessionCannotBeLocked."""
    result = js("sessionLocked", queue="session-locked")
    assert result["refused"] is True
    assert result["code"] == "SessionCannotBeLocked"


def test_receivers_of_the_wrong_kind_are_refused(js):
    """A plain receiver's receive on a session queue is refused with Azure's amqp:not-allowed text (its
    $management peek, no receiving link, still browses); acceptSession on a queue without sessions is
    refused though a message of that session waits there."""
    result = js("receiverKinds", sessionQueue="receiver-kind-sessions", plainQueue="receiver-kind-plain")
    assert "received" not in result, f"the plain receiver got {result['received']} message(s)"
    assert result["receiveError"]["name"] == "ServiceBusError"
    assert result["receiveError"]["message"] == (
        "InvalidOperationError: It is not possible for an entity that requires sessions to create a"
        " non-sessionful message receiver."
    )
    assert result["peeked"] == ["kept"]
    assert "accepted" not in result, "acceptSession was granted on a queue without sessions"
    # Its code is this SDK's reading of the null source (SessionCannotBeLocked), not the detach's error.
    assert result["acceptError"]["name"] == "ServiceBusError"
