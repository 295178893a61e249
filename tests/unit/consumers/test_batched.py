"""A batch's changes: records side by side, each in order; a retry applies only the rest; failures named."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from dualbus.consumers._batched import BatchFailedError, BatchProgress, apply_batch
from dualbus.shared.envelope import Envelope, Operation, Origin
from dualbus.shared.errors import PermanentError, RejectedError, Rejection, TransientError

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _change(account: str, version: int) -> Envelope:
    return Envelope.for_change(
        origin=Origin.FO,
        area="customer",
        entity="CustomersV3",
        key={"dataAreaId": "usmf", "CustomerAccount": account},
        operation=Operation.UPDATE,
        source_version=version,
        time=NOW,
        data={"OrganizationName": account},
    )


class Target:
    """Applies changes, recording the order, failing the ones it is told to."""

    def __init__(self, failing: dict[str, Exception] | None = None) -> None:
        self.failing = dict(failing or {})
        self.applied: list[tuple[str, int]] = []
        self.running = 0
        self.most_at_once = 0

    async def apply(self, envelope: Envelope) -> str:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0)  # let the other records start
            account = str(envelope.key["CustomerAccount"])
            if account in self.failing:
                raise self.failing[account]
            self.applied.append((account, envelope.source_version))
            return "applied"
        finally:
            self.running -= 1


@pytest.mark.asyncio
async def test_records_run_side_by_side_each_in_order() -> None:
    changes = [_change("A", 1), _change("B", 1), _change("A", 2), _change("C", 1), _change("A", 3)]
    target = Target()
    outcomes = await apply_batch(changes, target.apply, BatchProgress())
    assert outcomes == ["applied"] * 5
    assert [v for a, v in target.applied if a == "A"] == [1, 2, 3]
    assert target.most_at_once == 3  # A, B and C at once


@pytest.mark.asyncio
async def test_a_retry_applies_only_what_the_last_attempt_did_not_finish() -> None:
    changes = [_change("A", 1), _change("B", 1), _change("B", 2)]
    target = Target({"B": TransientError("busy")})
    progress = BatchProgress()
    with pytest.raises(TransientError):
        await apply_batch(changes, target.apply, progress)
    assert target.applied == [("A", 1)]  # B's later change waited for its first
    del target.failing["B"]
    assert await apply_batch(changes, target.apply, progress) == ["applied"] * 3
    assert target.applied == [("A", 1), ("B", 1), ("B", 2)]  # A was not applied twice


@pytest.mark.asyncio
async def test_a_failure_no_retry_fixes_names_each_failed_change() -> None:
    changes = [_change("A", 1), _change("B", 1), _change("C", 1)]
    target = Target(
        {
            "B": RejectedError("its data holds 'Nope'", reason=Rejection.UNKNOWN_FIELD),
            "C": PermanentError("the target refused it", reason="TargetRejected"),
        }
    )
    with pytest.raises(BatchFailedError) as raised:
        await apply_batch(changes, target.apply, BatchProgress())
    assert raised.value.reason == "UnknownField"  # the first failed change's own code
    text = str(raised.value)
    assert text.startswith("2 of 3 changes could not be applied (the others were)")
    assert f"change 1 (event {changes[1].id}): UnknownField" in text
    assert f"change 2 (event {changes[2].id}): TargetRejected" in text
    assert target.applied == [("A", 1)]


@pytest.mark.asyncio
async def test_a_passing_failure_is_retried_before_the_batch_is_given_up() -> None:
    changes = [_change("A", 1), _change("B", 1)]
    target = Target({"A": PermanentError("refused", reason="TargetRejected"), "B": TransientError("busy")})
    with pytest.raises(TransientError):
        await apply_batch(changes, target.apply, BatchProgress())
