"""One table maps each exception a handler raises to its settlement (docs/processing.md)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from dualbus.consumers import Action, Reason, verdict
from dualbus.shared.errors import (
    EnvelopeError,
    LookupUnresolvedError,
    PermanentError,
    ThrottledError,
    TransformError,
    TransientError,
)


class _Strict(BaseModel):
    n: int


def _schema_error() -> EnvelopeError:
    try:
        _Strict.model_validate({"n": "x"})
    except ValidationError as exc:
        error = EnvelopeError("not a valid envelope")
        error.__cause__ = exc
        return error
    raise AssertionError("validation should have failed")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (EnvelopeError("the body is not JSON"), Reason.INVALID_ENVELOPE),
        (_schema_error(), Reason.SCHEMA_VIOLATION),
        (TransformError("bad", map_name="company", field="Name"), Reason.MAPPING_ERROR),
        (LookupUnresolvedError("none", map_name="customer", field="msdyn_company"), Reason.UNRESOLVED_LOOKUP),
        (PermanentError("400 bad column", reason="TargetRejected"), Reason.TARGET_REJECTED),
        (PermanentError("odd", reason="NotACode"), Reason.TARGET_REJECTED),
    ],
)
def test_permanent_failures_dead_letter_at_once_with_their_reason(error, reason):
    """Every permanent error class is dead-lettered immediately with its documented reason code."""
    decided = verdict(error)
    assert decided.action is Action.DEAD_LETTER
    assert decided.reason is reason
    assert decided.description


def test_transient_failures_retry_and_carry_retry_after():
    """A throttled error is retried, and the server's Retry-After travels with the verdict."""
    decided = verdict(ThrottledError("429", retry_after=7.5))
    assert decided.action is Action.RETRY
    assert decided.retry_after == 7.5
    assert not decided.dead_letter_when_spent


def test_transient_without_retry_after_abandons_when_spent():
    """A plain transient error retries and is abandoned, not dead-lettered, when its budget is spent."""
    decided = verdict(TransientError("503"))
    assert decided.action is Action.RETRY
    assert decided.retry_after is None
    assert decided.dead_letter_when_spent is False


def test_unexpected_exceptions_retry_then_dead_letter_with_their_type():
    """An unexpected exception is retried first and dead-lettered as UnexpectedError naming its type."""
    decided = verdict(ZeroDivisionError("division by zero"))
    assert decided.action is Action.RETRY
    assert decided.dead_letter_when_spent
    assert decided.reason is Reason.UNEXPECTED_ERROR
    assert decided.description.startswith("ZeroDivisionError")


def test_descriptions_are_redacted_and_bounded():
    """A description never carries a secret-shaped value and stays within the property's size."""
    secret = "Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=abcdefSECRET; " + "x" * 5000
    decided = verdict(PermanentError(secret, reason="TargetRejected"))
    assert "abcdefSECRET" not in decided.description
    assert len(decided.description) <= 1024
