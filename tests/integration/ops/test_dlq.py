"""Dead-letter operations with the real SDK against the emulator: list, edited replay, purge, crash safety."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from azure.servicebus import ServiceBusClient, ServiceBusReceivedMessage, ServiceBusSubQueue

from dualbus.ops.audit import AuditLog
from dualbus.ops.deadletters import (
    ORIGINAL_ID_PROPERTY,
    REPLAY_COUNT_PROPERTY,
    DeadLetterFilter,
    group_by_reason,
)
from dualbus.ops.dlq import ReplacementBody, Route, peek_dead_letters, purge, replay
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import EmulatorThread, start_in_process
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import DualbusError
from dualbus.shared.messages import application_properties, envelope_from_message, to_message
from tests.contract.conftest import ShiftedClock
from tests.integration.ops.conftest import AUDIT, _config_with_audit

pytestmark = pytest.mark.integration

TOPIC = "dualbus.customer"
ROUTE = Route(area="customer", topic=TOPIC, subscription="to-dataverse")


def _envelope(account: str, currency: str = "XXX") -> Envelope:
    return Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key={"dataAreaId": "usmf", "CustomerAccount": account},
        operation=Operation.UPDATE,
        source_version=1,
        time=datetime.now(UTC),
        company="USMF",
        data={"CustomerAccount": account, "SalesCurrencyCode": currency},
    )


def _receive_all(
    bus: ServiceBusClient, subscription: str, session_id: str | None
) -> list[ServiceBusReceivedMessage]:
    with bus.get_subscription_receiver(
        TOPIC, subscription, session_id=session_id, max_wait_time=1
    ) as receiver:
        received = receiver.receive_messages(max_message_count=50, max_wait_time=1)
        for message in received:
            receiver.complete_message(message)
        return received


def _publish_and_dead_letter(bus: ServiceBusClient, envelopes: dict[str, str]) -> dict[str, str]:
    """Publish each envelope and dead-letter it from to-dataverse with its reason; returns the sessions."""
    sessions = {}
    with bus.get_topic_sender(TOPIC) as sender:
        for account in envelopes:
            message = to_message(_envelope(account))
            sessions[account] = str(message.session_id)
            sender.send_messages(message)
    for account, reason in envelopes.items():
        with bus.get_subscription_receiver(
            TOPIC, "to-dataverse", session_id=sessions[account], max_wait_time=2
        ) as r:
            (message,) = r.receive_messages(max_message_count=1, max_wait_time=2)
            r.dead_letter_message(message, reason=reason, error_description=f"{account} failed")
    _receive_all(bus, AUDIT, None)  # the audit subscription took its own copies; clear them
    return sessions


def test_list_groups_dead_letters_by_reason(bus: ServiceBusClient) -> None:
    """Dead-lettered messages are listed with their reason and description, grouped with counts."""
    _publish_and_dead_letter(
        bus, {"C-1": "UnresolvedLookup", "C-2": "UnresolvedLookup", "C-3": "TargetRejected"}
    )
    letters = peek_dead_letters(bus, ROUTE)
    assert sorted(letter.reason for letter in letters) == [
        "TargetRejected",
        "UnresolvedLookup",
        "UnresolvedLookup",
    ]
    groups = group_by_reason(letters, datetime.now(UTC))
    assert [(g.reason, g.count) for g in groups] == [("UnresolvedLookup", 2), ("TargetRejected", 1)]
    assert {letter.description for letter in letters} == {"C-1 failed", "C-2 failed", "C-3 failed"}


def test_replay_edits_and_reaches_only_its_subscription(bus: ServiceBusClient, tmp_path: Path) -> None:
    """An edited replay goes back to to-dataverse only, keeps its properties, leaves other reasons alone."""
    sessions = _publish_and_dead_letter(bus, {"C-1": "UnresolvedLookup", "C-2": "TargetRejected"})
    audit = AuditLog(tmp_path / "audit.jsonl")
    report = replay(
        bus,
        ROUTE,
        DeadLetterFilter(reasons=frozenset({"UnresolvedLookup"})),
        audit=audit,
        edits={"data.SalesCurrencyCode": "USD"},
    )
    assert report.matched == 1
    assert len(report.done) == 1
    (replayed,) = _receive_all(bus, "to-dataverse", sessions["C-1"])
    envelope = envelope_from_message(replayed)
    assert envelope.data["SalesCurrencyCode"] == "USD"
    assert envelope.id == _envelope("C-1").id
    properties = application_properties(replayed)
    assert properties[REPLAY_COUNT_PROPERTY] == 1
    assert properties[ORIGINAL_ID_PROPERTY] == _envelope("C-1").id
    assert properties["origin"] == "fo"
    assert _receive_all(bus, AUDIT, None) == []
    assert [letter.reason for letter in peek_dead_letters(bus, ROUTE)] == ["TargetRejected"]
    (line,) = audit.read()
    assert (line["action"], line["outcome"], line["reason"]) == ("dlq.replay", "sent", "UnresolvedLookup")


class _CrashAfterSend(AuditLog):
    """An audit log that fails once, right after the replay was sent and before it is completed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failures = 1

    def record(self, action: str, outcome: str, **details: object) -> None:
        if self.failures:
            self.failures -= 1
            raise DualbusError("crashed between send and complete")
        super().record(action, outcome, **details)


def test_crash_between_send_and_complete_loses_nothing(bus: ServiceBusClient, tmp_path: Path) -> None:
    """A failure between send and complete keeps the dead-letter; the next replay's resend is absorbed."""
    sessions = _publish_and_dead_letter(bus, {"C-9": "UnresolvedLookup"})
    audit = _CrashAfterSend(tmp_path / "audit.jsonl")
    selection = DeadLetterFilter(everything=True)
    first = replay(bus, ROUTE, selection, audit=audit)
    assert first.failed
    assert len(peek_dead_letters(bus, ROUTE)) == 1
    second = replay(bus, ROUTE, selection, audit=audit)
    assert len(second.done) == 1
    assert peek_dead_letters(bus, ROUTE) == []
    replays = _receive_all(bus, "to-dataverse", sessions["C-9"])
    assert len(replays) == 1
    assert orjson.loads(b"".join(replays[0].body))["key"]["CustomerAccount"] == "C-9"


def test_purge_removes_only_the_selection(bus: ServiceBusClient, tmp_path: Path) -> None:
    """Purge removes the selected dead-letters for good and audits each."""
    _publish_and_dead_letter(bus, {"C-1": "TargetRejected", "C-2": "UnresolvedLookup"})
    audit = AuditLog(tmp_path / "audit.jsonl")
    report = purge(bus, ROUTE, DeadLetterFilter(reasons=frozenset({"TargetRejected"})), audit=audit)
    assert len(report.done) == 1
    assert [letter.reason for letter in peek_dead_letters(bus, ROUTE)] == ["UnresolvedLookup"]
    assert [line["action"] for line in audit.read()] == ["dlq.purge"]


def test_purge_of_confirmed_letters_leaves_those_that_match_only_later(
    bus: ServiceBusClient, tmp_path: Path
) -> None:
    """A purge given the letters an operator confirmed removes those, not a letter that matches its filter
    but was not among them (one that arrived after the question was asked)."""
    _publish_and_dead_letter(bus, {"C-1": "TargetRejected", "C-2": "TargetRejected"})
    confirmed = [letter.place for letter in peek_dead_letters(bus, ROUTE)]
    _publish_and_dead_letter(bus, {"C-3": "TargetRejected"})  # arrived after the count was shown
    selection = DeadLetterFilter(reasons=frozenset({"TargetRejected"}), letters=frozenset(confirmed))
    report = purge(bus, ROUTE, selection, audit=AuditLog(tmp_path / "audit.jsonl"))
    assert len(report.done) == 2
    [left] = peek_dead_letters(bus, ROUTE)
    assert left.place not in confirmed
    assert left.description == "C-3 failed"


def test_a_file_body_exported_from_another_message_is_not_replayed_over_this_one(
    bus: ServiceBusClient, tmp_path: Path
) -> None:
    """A sequence number names another letter once its queue was recreated: the body the file holds for it
    was exported from another message, so that letter fails and stays, and nothing is sent."""
    sessions = _publish_and_dead_letter(bus, {"C-1": "TargetRejected"})
    [letter] = peek_dead_letters(bus, ROUTE)
    stranger = ReplacementBody("another-message-id", letter.message_body)
    audit = AuditLog(tmp_path / "audit.jsonl")
    report = replay(
        bus, ROUTE, DeadLetterFilter(everything=True), audit=audit, bodies={letter.sequence_number: stranger}
    )
    assert report.done == []
    assert "another-message-id" in report.failed[letter.message_id]
    assert [kept.message_id for kept in peek_dead_letters(bus, ROUTE)] == [letter.message_id]
    assert _receive_all(bus, "to-dataverse", sessions["C-1"]) == []


def test_a_letter_older_than_its_consumers_remember_deletes_is_replayed_only_when_forced(
    bus: ServiceBusClient, tmp_path: Path
) -> None:
    """Past the tombstones' TTL a delete of its record may be forgotten: refused, kept; --force sends it."""
    _publish_and_dead_letter(bus, {"C-1": "TargetRejected"})
    forgetful = Route(
        area=ROUTE.area, topic=TOPIC, subscription=ROUTE.subscription, tombstone_ttl=timedelta(0)
    )
    audit = AuditLog(tmp_path / "audit.jsonl")
    refused = replay(bus, forgetful, DeadLetterFilter(everything=True), audit=audit)
    assert refused.done == []
    assert "--force" in next(iter(refused.failed.values()))
    assert len(peek_dead_letters(bus, ROUTE)) == 1
    forced = replay(bus, forgetful, DeadLetterFilter(everything=True), audit=audit, force=True)
    assert len(forced.done) == 1
    assert peek_dead_letters(bus, ROUTE) == []


class _FailsOnSecond(AuditLog):
    """An audit log with a bug: the second line it writes raises an error nobody expects."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.lines = 0

    def record(self, action: str, outcome: str, **details: object) -> None:
        self.lines += 1
        if self.lines == 2:
            raise RuntimeError("unexpected failure halfway through the pass")
        super().record(action, outcome, **details)


def test_failure_halfway_through_a_pass_releases_the_letters_it_held(
    bus: ServiceBusClient, tmp_path: Path
) -> None:
    """An unexpected error mid-pass gives back every letter the pass held at once, not after the lock."""
    _publish_and_dead_letter(bus, {"C-1": "TargetRejected", "C-2": "TargetRejected", "C-3": "TargetRejected"})
    with pytest.raises(RuntimeError, match="halfway"):
        purge(bus, ROUTE, DeadLetterFilter(everything=True), audit=_FailsOnSecond(tmp_path / "audit.jsonl"))
    # A letter still locked would come back only after the route's 60-second lock duration.
    released = _receive_dead_letters(bus, expected=2, within_s=5)
    assert sorted(orjson.loads(b"".join(m.body))["key"]["CustomerAccount"] for m in released) == [
        "C-2",
        "C-3",
    ]


def _receive_dead_letters(
    bus: ServiceBusClient, *, expected: int, within_s: float
) -> list[ServiceBusReceivedMessage]:
    """Peek-lock and complete up to ``expected`` dead-letters of the route, waiting at most ``within_s``."""
    received: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + within_s
    with bus.get_subscription_receiver(
        TOPIC, ROUTE.subscription, sub_queue=ServiceBusSubQueue.DEAD_LETTER
    ) as receiver:
        while len(received) < expected and (left := deadline - time.monotonic()) > 0:
            batch = receiver.receive_messages(max_message_count=expected - len(received), max_wait_time=left)
            for message in batch:
                receiver.complete_message(message)
            received += batch
    return received


class _LongAction(AuditLog):
    """An audit log whose first line takes longer than the locks: the broker's clock moves past them."""

    def __init__(self, path: Path, emulator: EmulatorThread, clock: ShiftedClock) -> None:
        super().__init__(path)
        self.emulator, self.clock, self.moved = emulator, clock, False

    def record(self, action: str, outcome: str, **details: object) -> None:
        super().record(action, outcome, **details)
        if not self.moved:
            self.moved = True
            self.clock.offset += 301  # past any lock: Service Bus allows 5 minutes at most
            self.emulator.server.run_timers()


def test_letters_whose_locks_ended_during_a_pass_are_not_acted_on_again(tmp_path: Path) -> None:
    """A pass longer than the lock: the letters it held come back to it, and it ends instead of acting on
    them again (or, without an end, going round for as long as each round outlasts the lock)."""
    clock = ShiftedClock()
    with (
        start_in_process(config=load_config(_config_with_audit()), clock=clock) as emulator,
        ServiceBusClient.from_connection_string(emulator.connection_string) as bus,
    ):
        _publish_and_dead_letter(bus, {"C-1": "UnresolvedLookup", "C-2": "TargetRejected"})
        audit = _LongAction(tmp_path / "audit.jsonl", emulator, clock)
        report = purge(bus, ROUTE, DeadLetterFilter(reasons=frozenset({"TargetRejected"})), audit=audit)
        # Its lock ended while it was acted on: not removed, and not acted on a second time.
        assert [line["outcome"] for line in audit.read()] == ["removed", "not-removed"]
        assert report.done == []
        assert sorted(letter.reason for letter in peek_dead_letters(bus, ROUTE)) == [
            "TargetRejected",
            "UnresolvedLookup",
        ]
