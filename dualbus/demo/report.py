"""The demo's verdict: is every drift reconcile found explained by a change that was, rightly, dead-lettered?

Pure: reconcile's drifted records and problem rows, and the dead-lettered envelopes, go in; the verdict and
the operator's next commands come out. A record is named by its area, company and the values of its natural
key (field names differ between F&O and Dataverse, the values do not), compared case-insensitively.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "REFUSAL_REASONS",
    "DriftVerdict",
    "RecordRef",
    "dead_letter_ref",
    "dlq_commands",
    "drift_verdict",
    "problem_values",
]


# Dead-letter reasons that mean "the target rightly refused this change". An unexpected error or an
# unreadable envelope is a fault of the pipeline, so a drift it left behind is not excused.
REFUSAL_REASONS = frozenset({"UnresolvedLookup", "MappingError", "TargetRejected", "SchemaViolation"})


@dataclass(frozen=True, slots=True)
class RecordRef:
    """A record as a dead-lettered change names it: area, company (upper case) and key values."""

    area: str
    company: str | None
    values: frozenset[str]

    def explains(self, area: str, company: str | None, values: Iterable[str]) -> bool:
        """Whether this dead-lettered record is the drifted one (an unknown company matches any)."""
        if area != self.area or not self.values:
            return False
        if company is not None and self.company is not None and company.upper() != self.company:
            return False
        return self.values <= {value.casefold() for value in values}


def _key_values(key: Mapping[str, object], company: str | None) -> frozenset[str]:
    values = {str(value).casefold() for value in key.values() if value is not None}
    # The company is a part of most keys, named differently on each side: compared on its own.
    return frozenset(values - {company.casefold()} if company else values)


def dead_letter_ref(body: bytes) -> RecordRef | None:
    """The record a dead-lettered envelope is about; None when the body is not an envelope."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("key"), dict):
        return None
    company = envelope.get("company")
    company = str(company).upper() if company else None
    return RecordRef(str(envelope.get("area")), company, _key_values(envelope["key"], company))


def problem_values(row: str) -> list[str]:
    """The key values in reconcile's description of a row it could not map (``Field=value,Other=value``)."""
    return [part.partition("=")[2] or part for part in row.split(",")]


@dataclass(slots=True)
class DriftVerdict:
    """Drifted records split into those a dead-letter explains and those nothing explains."""

    explained: list[dict[str, Any]] = field(default_factory=list)
    unexplained: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every drift is explained by a dead-lettered change."""
        return not self.unexplained

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "ok": self.ok,
            "explained": len(self.explained),
            "unexplained": len(self.unexplained),
            "unexplained_records": self.unexplained,
        }


def drift_verdict(
    drifts: Iterable[Mapping[str, Any]],
    problems: Iterable[Mapping[str, Any]],
    dead_letters: Sequence[RecordRef],
    *,
    unlisted: int = 0,
) -> DriftVerdict:
    """Check each drift (``as_dict()['records']`` of a reconcile report) and problem row against the DLQ.

    ``unlisted`` drifts (counted by reconcile, not detailed) cannot be checked: they count as unexplained.
    """
    verdict = DriftVerdict()
    for drift in drifts:
        company = drift.get("company")
        values = [str(v) for v in dict(drift.get("key") or {}).values() if v is not None]
        explained = any(ref.explains(str(drift.get("area")), company, values) for ref in dead_letters)
        (verdict.explained if explained else verdict.unexplained).append(dict(drift))
    for problem in problems:
        values = problem_values(str(problem.get("row", "")))
        explained = any(ref.explains(str(problem.get("area")), None, values) for ref in dead_letters)
        (verdict.explained if explained else verdict.unexplained).append(dict(problem))
    if unlisted:
        verdict.unexplained.append({"unlisted_drifts": unlisted})
    return verdict


def dlq_commands(connection_string: str, groups: Iterable[Mapping[str, Any]]) -> list[str]:
    """The commands to inspect and replay the dead-letters of each (area, subscription, reason) group."""
    lines = [
        f"export DUALBUS_SERVICEBUS__CONNECTION_STRING={shlex.quote(connection_string)}",
        "dualbus dlq list",
    ]
    for group in groups:
        to = str(group["subscription"]).removeprefix("to-")
        selection = f"--area {group['area']} --to {to} --reason {shlex.quote(str(group['reason']))}"
        lines += [
            f"dualbus dlq export {selection} -o {group['area']}-{to}-deadletters.jsonl",
            f"dualbus dlq replay {selection} --dry-run",
        ]
        if group.get("example_id"):
            lines.append(f"dualbus dlq show {shlex.quote(str(group['example_id']))}")
    return lines
