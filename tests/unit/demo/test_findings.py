"""The demo's findings: reconcile's drift judged against the dead-letters of the right kind."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from rich.console import Console

from dualbus.demo.finish import Findings, print_findings
from dualbus.ops.deadletters import DeadLetter
from dualbus.ops.reconcile import DriftKind, ReconcileReport, RecordDrift

CONNECTION = (
    "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=s;UseDevelopmentEmulator=true"
)


def _report(*accounts: str) -> ReconcileReport:
    report = ReconcileReport(run_id="r-1", started=datetime(2026, 6, 1, tzinfo=UTC))
    for account in accounts:
        drift = RecordDrift(
            map_name="customers",
            area="customer",
            company="USMF",
            key={"dataAreaId": "USMF", "CustomerAccount": account},
            kind=DriftKind.MISSING_IN_DATAVERSE,
        )
        report.count(drift)
        report.drifts.append(drift)
    return report


def _letter(account: str, reason: str, sequence: int = 1) -> DeadLetter:
    body = {"area": "customer", "company": "usmf", "key": {"dataAreaId": "usmf", "CustomerAccount": account}}
    return DeadLetter(
        area="customer",
        topic="dualbus.customer",
        subscription="to-dataverse",
        sequence_number=sequence,
        message_id=f"m-{sequence}",
        reason=reason,
        description="no transactioncurrencies row with {'isocurrencycode': 'ZZZ'}",
        enqueued_time=datetime(2026, 6, 1, tzinfo=UTC),
        delivery_count=1,
        session_id="customer-0001",
        subject=None,
        content_type="application/json",
        body=orjson.dumps(body),
    )


def test_a_refused_change_explains_its_drift() -> None:
    """A record missing in Dataverse because Dataverse refused its create leaves the demo in step."""
    findings = Findings(_report("C-1"), [_letter("C-1", "UnresolvedLookup")], CONNECTION)
    assert findings.verdict.ok
    summary = findings.as_dict()
    assert summary["dead_letters"]["total"] == 1
    assert summary["dead_letters"]["unexpected"] == 0
    assert summary["reconcile"]["drifted_records"] == 1


def test_an_unexpected_error_does_not_excuse_drift() -> None:
    """A change dead-lettered by a pipeline fault is no refusal: its drift fails the verdict."""
    findings = Findings(_report("C-1"), [_letter("C-1", "UnexpectedError")], CONNECTION)
    assert not findings.verdict.ok
    assert findings.as_dict()["dead_letters"]["unexpected"] == 1


def test_groups_and_commands_follow_the_queues() -> None:
    """Each reason group is counted, has an example id, and gets its replay command."""
    letters = [_letter("C-1", "UnresolvedLookup", 1), _letter("C-2", "UnresolvedLookup", 2)]
    findings = Findings(_report(), letters, CONNECTION)
    (group,) = findings.groups
    assert (group["reason"], group["count"]) == ("UnresolvedLookup", 2)
    assert group["example_id"] in {"m-1", "m-2"}
    assert (
        "dualbus dlq replay --area customer --to dataverse --reason UnresolvedLookup --dry-run"
        in findings.commands
    )


def test_the_demo_gives_one_verdict() -> None:
    """Explained drift reads "In step" alone: reconcile's own "Drift found." is not printed before it."""
    findings = Findings(_report("C-1"), [_letter("C-1", "UnresolvedLookup")], CONNECTION)
    console = Console(record=True, width=120)
    print_findings(console, findings)
    text = console.export_text()
    assert "In step" in text
    assert "Drift found" not in text
    unexplained = Findings(_report("C-2"), [], CONNECTION)
    console = Console(record=True, width=120)
    print_findings(console, unexplained)
    text = console.export_text()
    assert "out of step with no dead-letter" in text
    assert "In step" not in text
