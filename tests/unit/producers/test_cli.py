"""The produce and initial-sync commands: arguments, configuration errors and the closing summary."""

from __future__ import annotations

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dualbus.cli import app
from dualbus.producers.__main__ import main as module_main
from dualbus.producers.initial_sync import SyncSummary, TableResult
from dualbus.producers.progress import render_summary
from dualbus.shared.envelope import Origin

runner = CliRunner()


def _nothing(*_: object, **__: object) -> None:
    """Stands in for the process-wide set-up calls."""


@pytest.fixture
def no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # The commands set up process-wide logging and telemetry; the test process keeps its own.
    monkeypatch.setattr("dualbus.producers.main.setup_logging", _nothing)
    monkeypatch.setattr("dualbus.producers.main.setup_telemetry", _nothing)
    for name in ("DUALBUS_SERVICEBUS__CONNECTION_STRING", "DUALBUS_FO__URL", "DUALBUS_DATAVERSE__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUALBUS_STATE_DIR", str(tmp_path))


@pytest.mark.usefixtures("no_configuration")
def test_produce_without_service_bus_settings_fails_with_a_message() -> None:
    """`dualbus produce` without Service Bus settings exits 1 and says what is missing."""
    result = runner.invoke(app, ["produce", "--from", "fo"])
    assert result.exit_code == 1
    assert "SERVICEBUS" in result.output


def test_initial_sync_refuses_an_unknown_source() -> None:
    """`dualbus initial-sync --from` takes fo or dataverse only."""
    result = runner.invoke(app, ["initial-sync", "--from", "sap"])
    assert result.exit_code == 2


@pytest.mark.usefixtures("no_configuration")
def test_module_entry_point_reports_configuration_errors(capsys) -> None:
    """`python -m dualbus.producers` returns 1 with an error line when settings are missing."""
    assert module_main(["--from", "dataverse", "--areas", "customer"]) == 1
    assert "error:" in capsys.readouterr().err


def test_summary_lists_tables_and_totals() -> None:
    """The closing summary shows each table's records and the run's total and rate."""
    summary = SyncSummary(
        origin=Origin.FO,
        results=[
            TableResult("company", "LegalEntities", "*", records=3, pages=1),
            TableResult("customer", "CustomersV3", "usmf", records=1200, pages=2, resumed=True),
        ],
        seconds=2.0,
    )
    console = Console(width=140, record=True)
    console.print(render_summary(summary))
    text = console.export_text()
    assert "CustomersV3" in text
    assert "1,203" in text
    assert "602 rec/s" in text
    assert summary.rate == pytest.approx(601.5)


@pytest.mark.usefixtures("no_configuration")
def test_an_empty_webhook_key_stops_the_producer_with_one_line(monkeypatch, capsys) -> None:
    """`DUALBUS_PRODUCER__FO_WEBHOOK_KEY=` (a secret that resolved to nothing) is refused before anything
    runs, in one error line naming the variable, instead of opening the webhook to any caller."""
    monkeypatch.setenv("DUALBUS_PRODUCER__FO_WEBHOOK_KEY", "")
    monkeypatch.setenv("DUALBUS_PRODUCER__FO_EVENTS", "webhook")
    assert module_main(["--from", "fo", "--areas", "customer"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1
    assert errors[0].startswith("error: invalid producer settings")
    assert "DUALBUS_PRODUCER__FO_WEBHOOK_KEY" in errors[0]
