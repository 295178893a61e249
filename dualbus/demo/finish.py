"""The end of a demo run: reconcile both systems, read the dead-letter queues, judge, and report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dualbus.demo.environment import PIPELINE_CLIENT, Endpoints
from dualbus.demo.report import (
    REFUSAL_REASONS,
    DriftVerdict,
    RecordRef,
    dead_letter_ref,
    dlq_commands,
    drift_verdict,
)
from dualbus.ops.deadletters import DeadLetter, group_by_reason
from dualbus.ops.dlq import VIEW_LIMIT, peek_dead_letters, select_routes
from dualbus.ops.reconcile import ReconcileReport, reconcile
from dualbus.ops.reconcile_print import print_report
from dualbus.shared.bus import bus_client
from dualbus.shared.bus_admin import admin_counts
from dualbus.shared.settings import ApiSettings, ServiceBusSettings, Settings
from dualbus.shared.topology import default_topology

__all__ = ["Findings", "dead_letter_groups", "find", "print_findings"]

# Drifted records listed on the terminal; summary.json has them all.
_SHOWN = 20


def _settings(endpoints: Endpoints) -> Settings:
    secret = SecretStr(endpoints.clients[PIPELINE_CLIENT])

    def api(twin: dict[str, str]) -> ApiSettings:
        return ApiSettings(
            url=twin["url"],
            client_id=PIPELINE_CLIENT,
            client_secret=secret,
            authority_host=twin["authority"],
            tenant_id=twin["tenant"],
            ca_bundle=Path(twin["ca_bundle"]),
            audience=twin["audience"],
        )

    return Settings(
        servicebus=ServiceBusSettings(connection_string=SecretStr(endpoints.connection_string)),
        fo=api(dict(endpoints.fo)),
        dataverse=api(dict(endpoints.dataverse)),
    )


def read_dead_letters(endpoints: Endpoints) -> list[DeadLetter]:
    """Every dead-letter of every route, peeked (nothing is removed)."""
    settings = _settings(endpoints).servicebus
    assert settings is not None  # noqa: S101 - _settings always sets it
    with bus_client(settings) as client, admin_counts(settings) as counts:
        # Peeking opens and closes a link (about a second); the administration API's count is a quick look.
        return [
            letter
            for route in select_routes(default_topology())
            if counts.subscription(route.topic, route.subscription).dead_lettered
            for letter in peek_dead_letters(client, route, limit=VIEW_LIMIT)
        ]


def dead_letter_groups(letters: Sequence[DeadLetter], now: datetime) -> list[dict[str, Any]]:
    """Dead-letters grouped by area, subscription and reason, with an example message id each."""
    examples = {(d.area, d.subscription, d.reason): d.message_id for d in letters}
    return [
        {
            "area": group.area,
            "subscription": group.subscription,
            "reason": group.reason,
            "count": group.count,
            "example_description": group.example_description,
            "example_id": examples.get((group.area, group.subscription, group.reason)),
        }
        for group in group_by_reason(letters, now)
    ]


class Findings:
    """What reconcile and the dead-letter queues say, and the verdict drawn from both."""

    def __init__(
        self, report: ReconcileReport, letters: Sequence[DeadLetter], connection_string: str
    ) -> None:
        self.reconcile = report
        self.report = report.as_dict()
        self.groups = dead_letter_groups(letters, datetime.now(UTC))
        refusals = [letter for letter in letters if letter.reason in REFUSAL_REASONS]
        self.unexpected = len(letters) - len(refusals)
        refs = [ref for ref in (dead_letter_ref(letter.body) for letter in refusals) if ref is not None]
        self.refs: list[RecordRef] = refs
        self.verdict: DriftVerdict = drift_verdict(
            self.report["records"], self.report["problems"], refs, unlisted=int(self.report["unlisted"])
        )
        self.commands = dlq_commands(connection_string, self.groups)

    @property
    def dead_lettered(self) -> int:
        """How many messages are dead-lettered in all."""
        return sum(int(group["count"]) for group in self.groups)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for summary.json."""
        return {
            "reconcile": {
                "drift": self.report["drift"],
                "drifted_records": len(self.report["records"]) + int(self.report["unlisted"]),
                "problem_rows": len(self.report["problems"]),
                "summary": self.report["summary"],
            },
            "verdict": self.verdict.as_dict(),
            "dead_letters": {
                "total": self.dead_lettered,
                "unexpected": self.unexpected,
                "groups": self.groups,
            },
            "dlq_commands": self.commands,
        }


def find(endpoints: Endpoints) -> Findings:
    """Reconcile both twins and read the dead-letter queues."""
    report = reconcile(_settings(endpoints))
    return Findings(report, read_dead_letters(endpoints), endpoints.connection_string)


def print_findings(console: Console, findings: Findings) -> None:
    """The reconcile report, the dead-letter table with the commands to act on them, and the verdict."""
    # One verdict only, the demo's own below: reconcile's "Drift found." then "In step" would contradict.
    print_report(findings.reconcile, console, verdict=False)
    letters = Table(title="Dead-letters", title_justify="left")
    for header in ("area", "subscription", "reason", "count", "example"):
        letters.add_column(header, justify="right" if header == "count" else "left")
    for group in findings.groups:
        letters.add_row(
            group["area"],
            group["subscription"],
            group["reason"],
            str(group["count"]),
            group["example_description"],
        )
    console.print(letters)
    console.print("To inspect and replay them:", style="bold")
    for line in findings.commands:
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    verdict = findings.verdict
    if verdict.ok:
        explained = f": all {len(verdict.explained)} drifts are rightly dead-lettered changes."
        console.print(Text.assemble(("In step", "green"), explained))
    else:
        unexplained = f": {len(verdict.unexplained)} record(s) out of step with no dead-letter:"
        console.print(Text.assemble(("Drift", "red"), unexplained))
        for record in verdict.unexplained[:_SHOWN]:
            console.print(f"  {_describe(record)}", highlight=False, markup=False, soft_wrap=True)
        if len(verdict.unexplained) > _SHOWN:  # the full list is in summary.json
            console.print(f"  ... and {len(verdict.unexplained) - _SHOWN} more (see summary.json)")


def _describe(record: dict[str, Any]) -> str:
    """One drifted record or problem row on one line."""
    if "kind" in record:
        key = ", ".join(f"{k}={v}" for k, v in dict(record.get("key") or {}).items())
        fields = ", ".join(
            f"{f['field']}: F&O {f['fo']!r} / Dataverse {f['dataverse']!r}" for f in record["fields"]
        )
        return f"{record['area']} {key}: {record['kind']}" + (f" ({fields})" if fields else "")
    if "row" in record:
        return f"{record['area']} {record['row']}: cannot be mapped: {record.get('message', '')}"
    return str(record)
