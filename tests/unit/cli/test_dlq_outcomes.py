"""What ``dlq`` commands say and return: the systems' text printed whole, an exit code that tells a partial
failure, and no action taken that the audit trail cannot record.

The bus is faked at the command's edges (the client, peeking, each route's replay or purge).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.commands import control, dlq
from dualbus.ops.deadletters import DeadLetter, DeadLetterFilter
from dualbus.ops.dlq import OperationReport, Route
from tests.unit.cli.dlq_edges import without_a_bus

# What the F&O twin's and OData's errors look like: square brackets that rich took for its markup tags.
DESCRIPTION = "OData error at [/data/CustomersV3]: value [internal] refused"


def _letter(number: int) -> DeadLetter:
    return DeadLetter(
        area="customer",
        topic="dualbus.customer",
        subscription="to-dataverse",
        sequence_number=number,
        message_id=f"m-{number}",
        reason="TargetRejected",
        description=DESCRIPTION,
        enqueued_time=datetime.now(UTC) - timedelta(hours=1),
        delivery_count=1,
        session_id=None,
        subject=None,
        content_type="application/json",
        body=orjson.dumps({"origin": "fo", "area": "customer", "data": {"Name": "x"}}),
    )


class _Bus:
    """Two letters in customer/to-dataverse; acting on the second fails (its lock was lost)."""

    def __init__(self) -> None:
        self.letters = [_letter(1), _letter(2)]
        self.acted: list[str] = []

    def peek(self, _client: object, route: Route, **_options: object) -> list[DeadLetter]:
        return list(self.letters) if (route.area, route.subscription) == ("customer", "to-dataverse") else []

    def iterate(self, client: object, route: Route) -> Iterator[DeadLetter]:
        yield from self.peek(client, route)

    def act(
        self, _client: object, route: Route, selection: DeadLetterFilter, **_options: Any
    ) -> OperationReport:
        report = OperationReport()
        for letter in self.peek(None, route):
            if selection.matches(letter, datetime.now(UTC)):
                report.matched += 1
                report.matched_ids |= {letter.message_id, str(letter.sequence_number)}
                if letter.sequence_number == 2:
                    report.failed[letter.message_id] = "the lock was lost [/amqp:lock-lost]"
                else:
                    self.acted.append(letter.message_id)
                    report.done.append(letter.message_id)
        return report


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> _Bus:
    fake = _Bus()
    without_a_bus(
        monkeypatch,
        tmp_path,
        peek_dead_letters=fake.peek,
        iter_dead_letters=fake.iterate,
        replay=fake.act,
        purge=fake.act,
    )
    return fake


@pytest.mark.usefixtures("bus")
def test_list_prints_a_description_with_square_brackets_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """rich read "[/data/CustomersV3]" as a closing tag: `dlq list` failed while such a letter was there."""
    monkeypatch.setattr(dlq.console, "width", 300)  # room for the whole description in its cell
    result = CliRunner().invoke(app, ["dlq", "list", "--area", "customer"])
    assert result.exit_code == 0, result.output
    assert DESCRIPTION in result.output


@pytest.mark.parametrize(("command", "verb"), [(["replay"], "replayed"), (["purge", "--yes"], "purged")])
def test_a_letter_that_failed_makes_the_command_fail(
    bus: _Bus, command: list[str], verb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One of two selected letters failed: the command says so with exit code 1, not 0."""
    monkeypatch.setattr(dlq.console, "width", 300)
    result = CliRunner().invoke(app, ["dlq", *command, "--reason", "TargetRejected"])
    assert result.exit_code == 1, result.output
    assert bus.acted == ["m-1"]
    assert f"customer/to-dataverse: {verb} 1 of 2 selected" in result.output
    assert "failed m-2: the lock was lost [/amqp:lock-lost]" in result.output
    assert f"error: 1 selected dead-letter(s) were not {verb}" in result.output


def test_purge_says_how_many_counted_letters_had_gone(bus: _Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted and confirmed two; one was gone (replayed elsewhere) by the time the pass reached it."""
    counted = _Bus()  # what the count saw: both letters
    monkeypatch.setattr(dlq, "iter_dead_letters", counted.iterate)
    bus.letters = [bus.letters[0]]
    result = CliRunner().invoke(app, ["dlq", "purge", "--yes", "--reason", "TargetRejected"])
    assert result.exit_code == 0, result.output
    assert bus.acted == ["m-1"]
    assert "1 of the 2 counted had gone meanwhile" in result.output


def test_nothing_is_replayed_when_the_audit_trail_cannot_be_written(
    bus: _Bus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trail is a directory: the command stops before it sends anything, naming the file."""
    monkeypatch.setenv("DUALBUS_AUDIT_FILE", str(tmp_path))
    result = CliRunner().invoke(app, ["dlq", "replay", "--reason", "TargetRejected"])
    assert result.exit_code == 1, result.output
    assert bus.acted == []
    assert f"error: {tmp_path}: the audit trail cannot be written" in result.output
    assert "Traceback" not in result.output


def test_no_route_is_paused_when_the_audit_trail_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    monkeypatch.setenv("DUALBUS_AUDIT_FILE", str(tmp_path))
    monkeypatch.setattr(control, "servicebus_settings", lambda: None)
    monkeypatch.setattr(control, "send_command", lambda *_args, **kw: sent.append(kw["route"]))
    result = CliRunner().invoke(app, ["pause", "customer", "--to", "fo"])
    assert result.exit_code == 1, result.output
    assert sent == []
    assert "the audit trail cannot be written" in result.output
