"""The demo's verdict: every drift must be a record whose change was rightly dead-lettered."""

from __future__ import annotations

import shlex

import orjson

from dualbus.demo.report import (
    RecordRef,
    dead_letter_ref,
    dlq_commands,
    drift_verdict,
    problem_values,
)


def _envelope(area: str, company: str | None, key: dict[str, object]) -> bytes:
    return orjson.dumps({"id": "e-1", "area": area, "company": company, "key": key, "data": {}})


def _drift(
    area: str, company: str | None, key: dict[str, object], kind: str = "missing_in_fo"
) -> dict[str, object]:
    return {"map": area, "area": area, "company": company, "key": key, "kind": kind, "fields": []}


def test_dead_letter_names_its_record_whatever_the_side() -> None:
    """A Dataverse-side key (company lookup, account number) matches F&O's names for the same record."""
    ref = dead_letter_ref(_envelope("customer", "usmf", {"msdyn_company": "USMF", "accountnumber": "C-1"}))
    assert ref == RecordRef("customer", "USMF", frozenset({"c-1"}))
    assert ref.explains("customer", "USMF", ["usmf", "C-1"])


def test_company_and_area_must_match() -> None:
    """The same account number in another company or another area is another record."""
    ref = dead_letter_ref(_envelope("customer", "USMF", {"dataAreaId": "usmf", "CustomerAccount": "C-1"}))
    assert ref is not None
    assert not ref.explains("customer", "DEMF", ["demf", "C-1"])
    assert not ref.explains("vendor", "USMF", ["usmf", "C-1"])


def test_body_that_is_not_an_envelope_names_nothing() -> None:
    """A dead-lettered body that is not JSON, or has no key, explains no drift."""
    assert dead_letter_ref(b"\x00not json") is None
    assert dead_letter_ref(b'{"area": "customer"}') is None


def test_verdict_splits_explained_from_unexplained() -> None:
    """Drift of a dead-lettered record is explained; drift of any other record fails the verdict."""
    dead = [RecordRef("customer", "USMF", frozenset({"c-1"}))]
    drifts = [
        _drift("customer", "USMF", {"dataAreaId": "usmf", "CustomerAccount": "C-1"}),
        _drift("customer", "USMF", {"dataAreaId": "usmf", "CustomerAccount": "C-2"}, kind="differs"),
    ]
    verdict = drift_verdict(drifts, [], dead)
    assert not verdict.ok
    assert [d["key"] for d in verdict.unexplained] == [{"dataAreaId": "usmf", "CustomerAccount": "C-2"}]
    assert len(verdict.explained) == 1


def test_no_drift_is_in_step() -> None:
    """With no drift and no problem rows the verdict is in step, dead-letters or not."""
    verdict = drift_verdict([], [], [RecordRef("customer", "USMF", frozenset({"c-1"}))])
    assert verdict.ok
    assert verdict.as_dict()["unexplained"] == 0


def test_problem_rows_are_matched_by_their_key_values() -> None:
    """A row reconcile cannot map is explained when its change was dead-lettered."""
    dead = [RecordRef("customer", "USMF", frozenset({"c-9"}))]
    problem = {"area": "customer", "row": "dataAreaId=usmf,CustomerAccount=C-9", "message": "no currency ZZZ"}
    other = {"area": "customer", "row": "dataAreaId=usmf,CustomerAccount=C-8", "message": "no currency ZZZ"}
    assert problem_values("dataAreaId=usmf,CustomerAccount=C-9") == ["usmf", "C-9"]
    assert drift_verdict([], [problem], dead).ok
    assert not drift_verdict([], [other], dead).ok


def test_unlisted_drift_cannot_pass() -> None:
    """Drift reconcile counted without listing it cannot be checked, so it fails the verdict."""
    assert not drift_verdict([], [], [], unlisted=3).ok


def test_commands_export_the_connection_string_and_select_each_group() -> None:
    """The printed commands set the connection string first, then list, export and dry-run each group."""
    connection = (
        "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=s;UseDevelopmentEmulator=true"
    )
    groups = [{"area": "customer", "subscription": "to-fo", "reason": "TargetRejected", "example_id": "m-1"}]
    lines = dlq_commands(connection, groups)
    assert shlex.split(lines[0]) == ["export", f"DUALBUS_SERVICEBUS__CONNECTION_STRING={connection}"]
    assert "dualbus dlq replay --area customer --to fo --reason TargetRejected --dry-run" in lines
    assert "dualbus dlq show m-1" in lines
    assert any(line.startswith("dualbus dlq export --area customer --to fo") for line in lines)
