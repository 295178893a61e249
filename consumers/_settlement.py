"""The one place where an exception raised while handling a message becomes its settlement.

Handlers raise; they never settle. The table is docs/processing.md's:

::

    raised                                         outcome
    nothing                                        complete
    TransientError / ThrottledError                retry in-process, then abandon once the budget is spent
    LookupMissingError                             retry for the lookup wait, then dead-letter
    EnvelopeError, TransformError,                 dead-letter at once with a reason code
    LookupUnresolvedError, PermanentError
    any other exception                            retry in-process, then dead-letter as UnexpectedError
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pydantic import ValidationError

from dualbus.shared.errors import (
    EnvelopeError,
    LookupMissingError,
    LookupUnresolvedError,
    PermanentError,
    TransformError,
    TransientError,
)
from dualbus.shared.logs import redact

__all__ = ["Action", "Reason", "Verdict", "verdict"]

_DESCRIPTION_LIMIT = 1024


class Reason(enum.StrEnum):
    """Dead-letter reason codes, as an operator sees them in ``DeadLetterReason``."""

    INVALID_ENVELOPE = "InvalidEnvelope"
    SCHEMA_VIOLATION = "SchemaViolation"
    MAPPING_ERROR = "MappingError"
    UNRESOLVED_LOOKUP = "UnresolvedLookup"
    TARGET_REJECTED = "TargetRejected"
    UNEXPECTED_ERROR = "UnexpectedError"


class Action(enum.StrEnum):
    """What happens to a message after one handling attempt."""

    RETRY = "retry"
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The settlement decided for one failure: retry (maybe after ``retry_after``) or dead-letter."""

    action: Action
    reason: Reason | None = None
    description: str = ""
    retry_after: float | None = None
    # What to do once retries are spent: abandon (transient) or dead-letter (unexpected).
    dead_letter_when_spent: bool = False
    # A lookup to a target row that is not there yet: retried only for the policy's lookup wait.
    awaits_lookup: bool = False


def verdict(exc: BaseException) -> Verdict:
    """Map the exception a handler raised to its settlement."""
    if isinstance(exc, TransientError):
        return Verdict(Action.RETRY, description=describe(exc), retry_after=exc.retry_after)
    if isinstance(exc, LookupMissingError):
        # The referenced row's own change travels in another session and may be late (its consumer was
        # restarted, say): wait for it a while before calling the lookup unresolved.
        return Verdict(
            Action.RETRY,
            reason=Reason.UNRESOLVED_LOOKUP,
            description=describe(exc),
            dead_letter_when_spent=True,
            awaits_lookup=True,
        )
    permanent = _permanent_reason(exc)
    if permanent is not None:
        return Verdict(Action.DEAD_LETTER, reason=permanent, description=describe(exc))
    # An unexpected exception may be a passing fault (a bug triggered by timing): retry first.
    return Verdict(
        Action.RETRY,
        reason=Reason.UNEXPECTED_ERROR,
        description=f"{type(exc).__name__}: {describe(exc)}",
        dead_letter_when_spent=True,
    )


def _permanent_reason(exc: BaseException) -> Reason | None:
    if isinstance(exc, EnvelopeError):
        # A body that parses but breaks the envelope's schema is a schema violation; anything else is junk.
        schema = isinstance(exc.__cause__, ValidationError)
        return Reason.SCHEMA_VIOLATION if schema else Reason.INVALID_ENVELOPE
    if isinstance(exc, LookupUnresolvedError):
        return Reason.UNRESOLVED_LOOKUP
    if isinstance(exc, TransformError):
        return Reason.MAPPING_ERROR
    if isinstance(exc, PermanentError):
        try:
            return Reason(exc.reason)
        except ValueError:
            return Reason.TARGET_REJECTED
    return None


def describe(exc: BaseException) -> str:
    """A one-paragraph description for an operator: the error's text, redacted and bounded."""
    text = redact(str(exc)) or type(exc).__name__
    return text if len(text) <= _DESCRIPTION_LIMIT else text[: _DESCRIPTION_LIMIT - 1] + "…"
