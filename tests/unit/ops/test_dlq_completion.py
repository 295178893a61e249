"""A dead-letter whose completion fails after its action ran is reported failed, and the audit trail says
so in a second line: a purge's "removed" (written first, so that no removal goes unaudited) is followed by
"not-removed", a replay's "sent" by "not-completed"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import MessageLockLostError

from dualbus.ops.audit import AuditLog
from dualbus.ops.deadletters import DeadLetterFilter
from dualbus.ops.dlq import Route, purge, replay

ROUTE = Route(area="customer", topic="dualbus.customer", subscription="to-dataverse")


class _Letter:
    """What the pass reads of a received dead-letter."""

    body_type = AmqpMessageBodyType.DATA
    dead_letter_reason = "TargetRejected"
    dead_letter_error_description = "refused"
    enqueued_time_utc = datetime(2026, 6, 1, tzinfo=UTC)
    delivery_count = 1
    session_id = "customer-0001"
    subject = None
    content_type = "application/json"

    def __init__(self, sequence_number: int) -> None:
        self.application_properties: dict[bytes, bytes] = {}
        self.locked_until_utc = datetime.now(UTC) + timedelta(minutes=1)  # no renewal is due
        self.sequence_number = sequence_number
        self.message_id = f"m-{sequence_number}"
        self.body = [b'{"id": "e1"}']


class _LosingLocks:
    """A dead-letter queue of two letters whose locks are lost before the first one is completed; a
    sender, too, for the replay."""

    def __init__(self) -> None:
        self.batches = [[_Letter(1), _Letter(2)]]
        self.completed: list[str] = []
        self.renewed: list[str] = []
        self.sent = 0

    def get_subscription_receiver(self, *_args: Any, **_kwargs: Any) -> _LosingLocks:
        return self

    def get_topic_sender(self, *_args: Any, **_kwargs: Any) -> _LosingLocks:
        return self

    def __enter__(self) -> _LosingLocks:
        return self

    def close(self) -> None:
        return None

    def receive_messages(self, **_kwargs: Any) -> list[_Letter]:
        return self.batches.pop(0) if self.batches else []

    def complete_message(self, message: _Letter) -> None:
        if message.sequence_number == 1:
            raise MessageLockLostError(message="the lock expired")
        self.completed.append(message.message_id)

    def abandon_message(self, _message: _Letter) -> None:
        return None

    def renew_message_lock(self, message: _Letter) -> None:
        self.renewed.append(message.message_id)
        message.locked_until_utc = datetime.now(UTC) + timedelta(minutes=1)

    def send_messages(self, _message: object) -> None:
        self.sent += 1


def _lines(audit: AuditLog) -> list[tuple[str, str, str]]:
    return [(line["action"], line["outcome"], line["message_id"]) for line in audit.read()]


def test_a_purge_whose_completion_failed_says_the_letter_was_not_removed(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    bus = _LosingLocks()
    report = purge(cast(Any, bus), ROUTE, DeadLetterFilter(everything=True), audit=audit)
    assert report.done == ["m-2"]
    assert list(report.failed) == ["m-1"]
    assert bus.completed == ["m-2"]
    assert _lines(audit) == [
        ("dlq.purge", "removed", "m-1"),
        ("dlq.purge", "not-removed", "m-1"),
        ("dlq.purge", "removed", "m-2"),
    ]
    assert "lock" in next(line for line in audit.read() if line["outcome"] == "not-removed")["error"]


def test_a_replay_whose_completion_failed_says_the_letter_is_still_dead_lettered(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    bus = _LosingLocks()
    report = replay(cast(Any, bus), ROUTE, DeadLetterFilter(everything=True), audit=audit)
    assert (report.done, list(report.failed), bus.sent) == (["m-2"], ["m-1"], 2)
    assert _lines(audit) == [
        ("dlq.replay", "sent", "m-1"),
        ("dlq.replay", "not-completed", "m-1"),
        ("dlq.replay", "sent", "m-2"),
    ]


def test_a_lock_about_to_end_is_renewed_before_its_letter_is_replayed(tmp_path: Path) -> None:
    """A replay sent on an ended lock could not be completed: a lock with seconds left is renewed first."""
    bus = _LosingLocks()
    bus.batches[0][1].locked_until_utc = datetime.now(UTC) + timedelta(seconds=3)
    report = replay(cast(Any, bus), ROUTE, DeadLetterFilter(everything=True), audit=AuditLog(tmp_path / "a"))
    assert bus.renewed == ["m-2"]
    assert report.done == ["m-2"]
