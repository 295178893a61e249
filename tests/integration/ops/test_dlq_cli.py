"""What an operator types at ``dualbus dlq`` is checked before anything is sent, and every answer is plain."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.servicebus import ServiceBusClient
from typer.testing import CliRunner, Result

from dualbus.cli import app
from dualbus.ops.dlq import peek_dead_letters
from tests.integration.ops.test_dlq import ROUTE, _publish_and_dead_letter

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("bus_settings", "audit_file")]

ONLY_ROUTE = ["--area", "customer", "--to", "dataverse"]


@pytest.fixture
def audit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The audit trail, where the settings say."""
    path = tmp_path / "trail" / "audit.jsonl"
    monkeypatch.setenv("DUALBUS_AUDIT_FILE", str(path))
    return path


def _dlq(*args: str) -> Result:
    return CliRunner().invoke(app, ["dlq", *args])


def _one_line_error(result: Result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_an_edit_outside_data_or_of_an_unknown_field_is_refused_before_sending(bus: ServiceBusClient) -> None:
    """``--set Field`` (no ``data.``) and ``--set data.NoSuchField`` exit 2 naming the fix; nothing moves."""
    _publish_and_dead_letter(bus, {"C-1": "UnresolvedLookup"})
    no_prefix = _dlq("replay", "--all", "--set", "SalesCurrencyCode=USD", *ONLY_ROUTE)
    assert no_prefix.exit_code == 2
    assert "write data.SalesCurrencyCode=VALUE" in _one_line_error(no_prefix)
    unknown = _dlq("replay", "--all", "--set", "data.NoSuchField=1", *ONLY_ROUTE)
    assert unknown.exit_code == 2
    message = _one_line_error(unknown)
    assert "'NoSuchField'" in message
    assert "SalesCurrencyCode" in message  # the map's fields are named
    assert len(peek_dead_letters(bus, ROUTE)) == 1  # nothing was replayed


def test_the_dry_run_shows_each_edit(bus: ServiceBusClient) -> None:
    """The dry run names the message and the field's value before and after; the letter stays."""
    _publish_and_dead_letter(bus, {"C-1": "UnresolvedLookup"})
    result = _dlq("replay", "--all", "--set", "data.SalesCurrencyCode=USD", "--dry-run", *ONLY_ROUTE)
    assert result.exit_code == 0, result.output
    assert "set data.SalesCurrencyCode: 'XXX' → 'USD'" in result.stdout
    assert "1 message(s) would be replayed" in result.stdout
    assert len(peek_dead_letters(bus, ROUTE)) == 1


def test_an_unknown_id_fails_naming_it(bus: ServiceBusClient, audit_file: Path) -> None:
    """``--id`` of no dead-letter exits 1 naming the id; a known one is replayed and audited where stated."""
    _publish_and_dead_letter(bus, {"C-1": "UnresolvedLookup"})
    unknown = _dlq("replay", "--id", "no-such-message", *ONLY_ROUTE)
    assert unknown.exit_code == 1
    assert "no-such-message" in _one_line_error(unknown)
    (letter,) = peek_dead_letters(bus, ROUTE)
    known = _dlq("replay", "--id", letter.message_id, *ONLY_ROUTE)
    assert known.exit_code == 0, known.output
    assert "replayed 1 of 1" in known.stdout
    assert f"Audit trail: {audit_file}" in " ".join(known.stdout.split())
    assert audit_file.exists()


def test_purge_says_how_many_and_when_there_is_nothing(bus: ServiceBusClient) -> None:
    """The question counts the letters per route; with none selected there is no question at all."""
    nothing = _dlq("purge", "--reason", "TargetRejected", *ONLY_ROUTE)
    assert nothing.exit_code == 0
    assert "Nothing to purge" in nothing.stdout
    _publish_and_dead_letter(bus, {"C-1": "TargetRejected", "C-2": "TargetRejected"})
    declined = CliRunner().invoke(
        app, ["dlq", "purge", "--reason", "TargetRejected", *ONLY_ROUTE], input="n\n"
    )
    assert "Remove 2 dead-letter(s) for good (2 in customer/to-dataverse)?" in declined.output
    assert declined.exit_code == 1
    assert len(peek_dead_letters(bus, ROUTE)) == 2
    purged = _dlq("purge", "--reason", "TargetRejected", "--yes", *ONLY_ROUTE)
    assert "purged 2 of 2" in purged.stdout
    assert peek_dead_letters(bus, ROUTE) == []


def test_a_sequence_number_acts_within_one_named_route_only(bus: ServiceBusClient) -> None:
    """``--id <sequence number>`` over every route is refused (exit 2), nothing purged; named with its
    route, it purges that letter."""
    _publish_and_dead_letter(bus, {"C-1": "TargetRejected"})
    (letter,) = peek_dead_letters(bus, ROUTE)
    number = str(letter.sequence_number)
    everywhere = _dlq("purge", "--id", number, "--yes")
    assert everywhere.exit_code == 2
    assert "--area and --to" in _one_line_error(everywhere)
    assert len(peek_dead_letters(bus, ROUTE)) == 1
    purged = _dlq("purge", "--id", number, "--yes", *ONLY_ROUTE)
    assert purged.exit_code == 0, purged.output
    assert "purged 1 of 1" in purged.stdout
    assert peek_dead_letters(bus, ROUTE) == []


def test_files_that_cannot_be_read_or_written_are_one_line_errors(tmp_path: Path) -> None:
    """A missing --from-file is a usage error (2); an export into a missing directory a failure (1)."""
    missing = _dlq("replay", "--from-file", str(tmp_path / "absent.jsonl"), *ONLY_ROUTE)
    assert missing.exit_code == 2
    assert "absent.jsonl" in _one_line_error(missing)
    unwritable = _dlq("export", "-o", str(tmp_path / "no-dir" / "out.jsonl"), *ONLY_ROUTE)
    assert unwritable.exit_code == 1
    assert "no-dir" in _one_line_error(unwritable)
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("not json\n")
    bad = _dlq("replay", "--from-file", str(garbled), *ONLY_ROUTE)
    assert bad.exit_code == 1
    assert "garbled.jsonl:1" in _one_line_error(bad)
