"""``dualbus topology apply`` against a bare emulator: creates everything once, then nothing; fixes drift."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator

import pytest
from azure.servicebus import ServiceBusMessage
from azure.servicebus.management import ServiceBusAdministrationClient
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.sandbox.servicebus.launcher import start_in_process
from dualbus.shared.topology import default_topology
from tests.contract.conftest import quick_client

# Azure's "never" for a TTL, TimeSpan.MaxValue, cut to whole seconds (shared.topology.NEVER_EXPIRES).
NEVER_EXPIRES = datetime.timedelta(days=10_675_199, hours=2, minutes=48, seconds=5)

pytestmark = [
    pytest.mark.contract,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

runner = CliRunner()


@contextlib.contextmanager
def _bare_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceBusAdministrationClient]:
    """An empty emulator that ``dualbus topology apply`` reaches, and an administration client on it."""
    with start_in_process() as emulator:
        monkeypatch.setenv("DUALBUS_SERVICEBUS__CONNECTION_STRING", emulator.connection_string)
        with ServiceBusAdministrationClient.from_connection_string(
            emulator.connection_string, connection_verify=False
        ) as admin:
            yield admin


def _apply(*args: str) -> str:
    result = runner.invoke(app, ["topology", "apply", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_apply_from_empty_is_idempotent_and_repairs_drift(monkeypatch):
    """From empty: apply creates; again: no changes; a changed property shows in --dry-run; apply fixes it."""
    topology = default_topology()
    topic = topology.topics[0]
    sub = topic.subscriptions[0]
    with start_in_process() as emulator:
        monkeypatch.setenv("DUALBUS_SERVICEBUS__CONNECTION_STRING", emulator.connection_string)
        planned = _apply("--dry-run")
        assert f"+ topic {topic.name}" in planned
        assert f"+ subscription {topic.name}/{sub.name}" in planned
        assert f"+ subscription {topic.name}/unroutable" in planned
        with ServiceBusAdministrationClient.from_connection_string(
            emulator.connection_string, connection_verify=False
        ) as admin:
            assert list(admin.list_topics()) == [], "--dry-run changes nothing"
            _apply()
            assert sorted(t.name for t in admin.list_topics()) == sorted(t.name for t in topology.topics)
            assert [r.name for r in admin.list_rules(topic.name, sub.name)] == [sub.rule_name]
            assert [r.name for r in admin.list_rules(topic.name, "unroutable")] == ["unroutable"]
            assert "no changes" in _apply()
            drifted = admin.get_subscription(topic.name, sub.name)
            drifted.max_delivery_count = sub.max_delivery_count + 5
            admin.update_subscription(topic.name, drifted)
            admin.create_rule(topic.name, sub.name, "stray")
            planned = _apply("--dry-run")
            assert (
                f"~ subscription {topic.name}/{sub.name}: max_delivery_count "
                f"{sub.max_delivery_count + 5} -> {sub.max_delivery_count}"
            ) in planned
            assert f"- rule {topic.name}/{sub.name}/stray" in planned
            assert (
                admin.get_subscription(topic.name, sub.name).max_delivery_count == sub.max_delivery_count + 5
            )
            _apply()
            assert admin.get_subscription(topic.name, sub.name).max_delivery_count == sub.max_delivery_count
            assert [r.name for r in admin.list_rules(topic.name, sub.name)] == [sub.rule_name]
            assert admin.get_subscription(topic.name, sub.name).lock_duration == sub.lock_duration
            assert (
                admin.get_topic(topic.name).default_message_time_to_live == topic.default_message_time_to_live
            )
            assert admin.get_queue(topology.control_queue).default_message_time_to_live == NEVER_EXPIRES
            assert "no changes" in _apply()
        # The applied rules route: a message no direction takes lands in the catch-all subscription.
        with quick_client(emulator.connection_string) as client:
            with client.get_topic_sender(topic.name) as sender:
                sender.send_messages(ServiceBusMessage("stray", application_properties={"origin": "nowhere"}))
            with client.get_subscription_receiver(topic.name, "unroutable") as receiver:
                [message] = receiver.receive_messages(max_wait_time=5)
                assert str(message) == "stray"
                receiver.complete_message(message)


def test_a_session_change_is_refused_not_applied(monkeypatch):
    """RequiresSession cannot change in place: apply stops with an error and changes nothing."""
    topology = default_topology()
    topic = topology.topics[0]
    sub = topic.subscriptions[0]
    with _bare_emulator(monkeypatch) as admin:
        admin.create_topic(topic.name)
        admin.create_subscription(topic.name, sub.name, requires_session=not sub.requires_session)
        result = runner.invoke(app, ["topology", "apply"])
        assert result.exit_code == 1
        assert "requires_session" in result.output
        assert [t.name for t in admin.list_topics()] == [topic.name], "nothing else was created"


def test_a_control_queue_whose_commands_expire_is_updated_and_says_what_stays(monkeypatch):
    """A control queue made with an expiring TTL gets "never"; the line says queued commands keep theirs."""
    topology = default_topology()
    with _bare_emulator(monkeypatch) as admin:
        admin.create_queue(
            topology.control_queue,
            lock_duration=datetime.timedelta(minutes=1),
            max_delivery_count=10,
            default_message_time_to_live=datetime.timedelta(days=365),
        )
        planned = _apply("--dry-run")
        [line] = [line for line in planned.splitlines() if line.startswith("~ queue")]
        assert "default_message_time_to_live 365 days, 0:00:00 -> never" in line
        assert "keep the expiry they were sent with" in line
        _apply()
        assert admin.get_queue(topology.control_queue).default_message_time_to_live == NEVER_EXPIRES
        assert "no changes" in _apply()


def test_a_control_queue_with_azures_default_ttl_is_left_alone(monkeypatch):
    """Azure's own default TTL, TimeSpan.MaxValue to the tick, already means never: no change is planned."""
    topology = default_topology()
    with _bare_emulator(monkeypatch) as admin:
        admin.create_queue(
            topology.control_queue, lock_duration=datetime.timedelta(minutes=1), max_delivery_count=10
        )
        assert admin.get_queue(topology.control_queue).default_message_time_to_live > NEVER_EXPIRES
        planned = _apply("--dry-run")
        assert f"queue {topology.control_queue}" not in planned


def test_a_duplicate_detection_change_is_refused_before_anything_changes(monkeypatch):
    """Duplicate detection is set only when a topic is made: apply changes nothing and says to recreate it."""
    topology = default_topology()
    first, later = topology.topics[0], topology.topics[1]
    with _bare_emulator(monkeypatch) as admin:
        admin.create_topic(later.name, requires_duplicate_detection=False)
        planned = _apply("--dry-run")
        assert f"! topic {later.name}: requires_duplicate_detection False -> True" in planned
        assert "recreate" in planned
        assert "1 of them refused (!): apply would change nothing" in planned
        result = runner.invoke(app, ["topology", "apply"])
        assert result.exit_code == 1
        assert "requires_duplicate_detection" in result.output
        assert [t.name for t in admin.list_topics()] == [later.name], "nothing else was created"
        assert first.name not in {t.name for t in admin.list_topics()}
        assert [q.name for q in admin.list_queues()] == [], "the control queue was not created either"
        assert admin.get_topic(later.name).requires_duplicate_detection is False


def test_a_session_change_on_the_control_queue_is_refused(monkeypatch):
    """RequiresSession is set only when a queue is made: a session control queue is refused, not updated."""
    topology = default_topology()
    with _bare_emulator(monkeypatch) as admin:
        admin.create_queue(topology.control_queue, requires_session=True)
        planned = _apply("--dry-run")
        assert f"! queue {topology.control_queue}: requires_session True -> False" in planned
        result = runner.invoke(app, ["topology", "apply"])
        assert result.exit_code == 1
        assert "requires_session" in result.output
        assert list(admin.list_topics()) == [], "nothing else was created"
        assert admin.get_queue(topology.control_queue).requires_session is True
