"""``dlq replay --from-file`` replays the letters the export file holds, each in its own route.

Sequence numbers are per entity on Service Bus: the customer letter 7 that the operator exported and the
vendor letter 7 that they never saw are different messages. The bus is faked at the command's edges (the
client, peeking, the replay of one route); the export file is written as ``dlq export`` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.ops.bodies import MessageBody
from dualbus.ops.deadletters import DeadLetter, DeadLetterFilter
from dualbus.ops.dlq import OperationReport, ReplacementBody, Route
from dualbus.shared.errors import ConfigError
from tests.unit.cli.dlq_edges import without_a_bus

SEQUENCE = 7  # the same number in two areas' dead-letter queues


def _letter(area: str, subscription: str = "to-dataverse") -> DeadLetter:
    change = {"origin": "fo", "area": area, "data": {"Name": f"{area} {SEQUENCE}"}}
    return DeadLetter(
        area=area,
        topic=f"dualbus.{area}",
        subscription=subscription,
        sequence_number=SEQUENCE,
        message_id=f"{area}-{subscription}-{SEQUENCE}",
        reason="TargetRejected",
        description="refused",
        enqueued_time=datetime.now(UTC) - timedelta(hours=1),
        delivery_count=1,
        session_id=None,
        subject=None,
        content_type="application/json",
        body=orjson.dumps(change),
    )


class _Bus:
    """Dead-letter queues by (area, subscription); what each route's replay selected, with its body."""

    def __init__(self, letters: list[DeadLetter]) -> None:
        self.queues: dict[tuple[str, str], list[DeadLetter]] = {}
        for letter in letters:
            self.queues.setdefault((letter.area, letter.subscription), []).append(letter)
        self.replayed: dict[str, ReplacementBody | None] = {}

    def peek(self, _client: object, route: Route, **_options: object) -> list[DeadLetter]:
        return list(self.queues.get((route.area, route.subscription), []))

    def replay(
        self,
        _client: object,
        route: Route,
        selection: DeadLetterFilter,
        *,
        bodies: Mapping[int, ReplacementBody] | None = None,
        **_options: Any,  # the audit trail and edits, not looked at here
    ) -> OperationReport:
        if selection.is_empty:  # as the real one: an empty selection is refused, never "everything"
            raise ConfigError("no dead-letters selected")
        report = OperationReport()
        now = datetime.now(UTC)
        for letter in self.peek(None, route):
            if selection.matches(letter, now):
                report.matched += 1
                report.matched_ids |= {letter.message_id, str(letter.sequence_number)}
                report.done.append(letter.message_id)
                self.replayed[letter.message_id] = (bodies or {}).get(letter.sequence_number)
        return report


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> _Bus:
    fake = _Bus([_letter("customer"), _letter("vendor"), _letter("customer", "to-fo")])
    without_a_bus(monkeypatch, tmp_path, peek_dead_letters=fake.peek, replay=fake.replay)
    return fake


def _export_of_the_customer_letter(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """An export holding only customer/to-dataverse's letter 7, its name edited (as an operator would)."""
    record = _letter("customer").to_json()
    record["body"]["data"]["Name"] = "edited"
    path = tmp_path / "letters.jsonl"
    path.write_bytes(orjson.dumps(record) + b"\n")
    return path, record


def test_only_the_exported_letter_is_replayed_not_its_namesakes_in_other_routes(
    bus: _Bus, tmp_path: Path
) -> None:
    path, record = _export_of_the_customer_letter(tmp_path)
    result = CliRunner().invoke(app, ["dlq", "replay", "--from-file", str(path)])
    assert result.exit_code == 0, result.output
    assert list(bus.replayed) == ["customer-to-dataverse-7"]
    assert bus.replayed["customer-to-dataverse-7"] == ReplacementBody(
        "customer-to-dataverse-7", MessageBody.from_json(record)
    )


def test_the_dry_run_shows_only_the_exported_letter(bus: _Bus, tmp_path: Path) -> None:
    path, _ = _export_of_the_customer_letter(tmp_path)
    result = CliRunner().invoke(app, ["dlq", "replay", "--from-file", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would replay customer/to-dataverse customer-to-dataverse-7" in result.output
    assert "1 message(s) would be replayed" in result.output
    assert bus.replayed == {}


def test_the_dry_run_shows_the_files_own_edit(bus: _Bus, tmp_path: Path) -> None:
    """The file's edited name is what the replay sends: the dry run showed no change at all."""
    path, _ = _export_of_the_customer_letter(tmp_path)
    result = CliRunner().invoke(app, ["dlq", "replay", "--from-file", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "set data.Name: 'customer 7' → 'edited'" in result.output
    assert bus.replayed == {}


@pytest.mark.usefixtures("bus")
def test_the_dry_run_does_not_count_a_letter_the_replay_would_refuse(tmp_path: Path) -> None:
    """The queue's letter 7 is another message now than the file's: the replay refuses it, and says so."""
    path, record = _export_of_the_customer_letter(tmp_path)
    path.write_bytes(orjson.dumps({**record, "message_id": "an-earlier-message"}) + b"\n")
    result = CliRunner().invoke(app, ["dlq", "replay", "--from-file", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would not replay customer/to-dataverse customer-to-dataverse-7" in result.output
    assert "0 message(s) would be replayed" in result.output


def test_an_id_given_beside_the_file_is_still_looked_for_in_every_route(bus: _Bus, tmp_path: Path) -> None:
    path, _ = _export_of_the_customer_letter(tmp_path)
    result = CliRunner().invoke(
        app, ["dlq", "replay", "--from-file", str(path), "--id", "vendor-to-dataverse-7"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(bus.replayed) == ["customer-to-dataverse-7", "vendor-to-dataverse-7"]
    assert bus.replayed["vendor-to-dataverse-7"] is None  # the file has no body for it: its own is sent


def test_a_file_line_whose_letter_is_gone_fails_naming_it(bus: _Bus, tmp_path: Path) -> None:
    """A line of the file that no queue holds any more was replayed nowhere: the command says which."""
    path, record = _export_of_the_customer_letter(tmp_path)
    gone = {**record, "sequence_number": 99, "message_id": "customer-to-dataverse-99"}
    path.write_bytes(path.read_bytes() + orjson.dumps(gone) + b"\n")
    result = CliRunner().invoke(app, ["dlq", "replay", "--from-file", str(path)])
    assert result.exit_code == 1, result.output
    assert "customer/to-dataverse #99 were not found" in result.output
    assert list(bus.replayed) == ["customer-to-dataverse-7"]


def test_a_letter_whose_message_id_spells_the_files_number_is_not_replayed_with_it(
    bus: _Bus, tmp_path: Path
) -> None:
    """The file names customer/to-dataverse letter 7; another letter there whose message id is "7" is left."""
    namesake = replace(_letter("customer"), sequence_number=8, message_id=str(SEQUENCE))
    bus.queues[("customer", "to-dataverse")].append(namesake)
    path, _ = _export_of_the_customer_letter(tmp_path)
    result = CliRunner().invoke(app, ["dlq", "replay", "--from-file", str(path)])
    assert result.exit_code == 0, result.output
    assert list(bus.replayed) == ["customer-to-dataverse-7"]
