"""One message is handled, retried in-process when that can help, and settled exactly once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
import stamina

from dualbus.consumers import (
    AdaptiveLimit,
    ApplyResult,
    ConsumerMetrics,
    MessageProcessor,
    MessageRetry,
)
from dualbus.shared.bus import LockLostError
from dualbus.shared.envelope import CONTENT_TYPE, Envelope, Operation, Origin
from dualbus.shared.errors import (
    LookupMissingError,
    LookupUnresolvedError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from dualbus.shared.maps import load_maps
from dualbus.shared.messages import to_message
from dualbus.shared.topology import Direction

MAPS = load_maps()


@dataclass
class FakeMessage:
    """What the processor reads from a received message."""

    body: bytes
    message_id: str = "m-1"
    application_properties: dict = field(default_factory=dict)
    content_type: str | None = CONTENT_TYPE
    session_id: str | None = None
    subject: str | None = None


class FakeSettler:
    """Records settlement calls; can be told to fail completing with a lost lock, as SessionHold says it."""

    def __init__(self, *, lose_lock: bool = False) -> None:
        self.calls: list[tuple] = []
        self.lose_lock = lose_lock

    async def complete_message(self, message):
        if self.lose_lock:
            raise LockLostError("lock expired")
        self.calls.append(("complete", message.message_id))

    async def abandon_message(self, message):
        self.calls.append(("abandon", message.message_id))

    async def dead_letter_message(self, message, reason=None, error_description=None):
        assert message.body
        self.calls.append(("dead-letter", reason, error_description))

    def lose(self, why):
        self.calls.append(("lose", why))


class ScriptedSink:
    """Raises the scripted errors in turn, then applies."""

    def __init__(self, *script: BaseException) -> None:
        self.script = list(script)
        self.applied = []

    async def apply(self, change):
        if self.script:
            raise self.script.pop(0)
        self.applied.append(change)
        return ApplyResult.APPLIED

    async def aclose(self):
        return None


@pytest.fixture(autouse=True)
def no_waits():
    # stamina's testing mode: no waits, and at most 10 attempts (fewer when the policy says so).
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


def _envelope(**changes) -> Envelope:
    envelope = Envelope.for_change(
        origin=Origin.FO,
        area="currency",
        entity="Currencies",
        key={"CurrencyCode": "EUR"},
        operation=Operation.UPDATE,
        source_version=4,
        time=datetime.now(UTC),
        data={"Name": "Euro"},
    )
    return envelope.model_copy(update=changes)


def _message(envelope: Envelope | None = None, **overrides) -> FakeMessage:
    """A received message as ``to_message`` sends it (its id is m-1), with ``overrides`` applied."""
    envelope = envelope or _envelope(id="m-1")
    sent = to_message(envelope)
    received = FakeMessage(
        body=envelope.to_json(),
        message_id=str(sent.message_id),
        application_properties=dict(sent.application_properties or {}),
        session_id=sent.session_id,
        subject=sent.subject,
    )
    return replace(received, **overrides)


def _processor(sink, *, budget=60.0, limit=None, retry=None):
    metrics = ConsumerMetrics(area="currency", direction="to-dataverse")
    return MessageProcessor(
        area="currency",
        direction=Direction.TO_DATAVERSE,
        maps=MAPS,
        sink=sink,
        limit=limit or AdaptiveLimit(4),
        retry=retry or MessageRetry(budget_seconds=budget),
        metrics=metrics,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchedRetry(MessageRetry):
    """A MessageRetry that notes when the lookup schedule is asked for."""

    asked: list[str] = field(default_factory=list)

    def for_lookups(self) -> MessageRetry:
        self.asked.append("lookups")
        return MessageRetry.for_lookups(self)

    def retrying_after(self, failure: Exception, *, started: float):
        # The copy for_lookups makes shares this list: each schedule notes its first wait as it starts.
        self.asked.append(f"retrying from {self.initial_wait} s")
        return MessageRetry.retrying_after(self, failure, started=started)


@pytest.mark.asyncio
async def test_success_completes_after_the_target_applied():
    """A message is completed once, after the sink applied its change."""
    sink, settler = ScriptedSink(), FakeSettler()
    processor = _processor(sink)
    assert await processor.process(_message(), settler) == "applied"
    assert settler.calls == [("complete", "m-1")]
    assert len(sink.applied) == 1
    assert processor.metrics.counts["applied"] == 1


@pytest.mark.asyncio
async def test_transient_failures_retry_in_process_then_complete():
    """Transient failures are retried without settling, then the message completes once."""
    sink = ScriptedSink(TransientError("503"), TransientError("timeout"))
    settler = FakeSettler()
    processor = _processor(sink)
    assert await processor.process(_message(), settler) == "applied"
    assert settler.calls == [("complete", "m-1")]
    assert processor.metrics.counts["retried"] == 2


@pytest.mark.asyncio
async def test_throttling_halves_the_concurrency_limit():
    """A 429 from the target halves the adaptive limit before the retry."""
    limit = AdaptiveLimit(8)
    processor = _processor(ScriptedSink(ThrottledError("429", retry_after=1.0)), limit=limit)
    await processor.process(_message(), FakeSettler())
    assert limit.limit == 4


@pytest.mark.asyncio
async def test_transient_failures_past_the_budget_abandon():
    """When the retry budget is spent on transient failures, the message is abandoned, not dead-lettered."""
    sink = ScriptedSink(*(TransientError("503") for _ in range(1000)))
    settler = FakeSettler()
    assert await _processor(sink, budget=0.0).process(_message(), settler) == "abandoned"
    assert settler.calls == [("abandon", "m-1")]


@pytest.mark.asyncio
async def test_unexpected_errors_past_the_budget_dead_letter_with_their_type():
    """An unexpected exception, once retries are spent, dead-letters as UnexpectedError naming its type."""
    settler = FakeSettler()
    outcome = await _processor(ScriptedSink(KeyError("x")), budget=0.0).process(_message(), settler)
    assert outcome == "dead-lettered"
    [(action, reason, description)] = settler.calls
    assert (action, reason) == ("dead-letter", "UnexpectedError")
    assert description.startswith("KeyError")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermanentError("400: column too long", reason="TargetRejected"), "TargetRejected"),
        (LookupUnresolvedError("no company", map_name="customer", field="msdyn_company"), "UnresolvedLookup"),
    ],
)
async def test_permanent_failures_dead_letter_at_once(error, reason):
    """A permanent failure from the sink is dead-lettered on the first attempt with its reason."""
    sink, settler = ScriptedSink(error), FakeSettler()
    processor = _processor(sink)
    assert await processor.process(_message(), settler) == "dead-lettered"
    assert settler.calls[0][:2] == ("dead-letter", reason)
    assert processor.metrics.counts["retried"] == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"not json", "InvalidEnvelope"), (b'{"id": "x"}', "SchemaViolation")],
)
async def test_bad_bodies_dead_letter_without_touching_the_target(body, reason):
    """Junk and schema-breaking bodies are dead-lettered with their reason and never reach the sink."""
    sink, settler = ScriptedSink(), FakeSettler()
    await _processor(sink).process(_message(body=body), settler)
    assert settler.calls[0][:2] == ("dead-letter", reason)
    assert sink.applied == []


@pytest.mark.asyncio
async def test_a_lost_lock_is_counted_not_raised():
    """When the lock is lost before completing, the outcome is lock-lost and nothing escapes."""
    processor = _processor(ScriptedSink())
    assert await processor.process(_message(), FakeSettler(lose_lock=True)) == "lock-lost"
    assert processor.metrics.counts["lock-lost"] == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (_message(content_type="application/json"), "WrongContentType"),
        (_message(message_id="m-2"), "PropertyMismatch"),
        (_message(_envelope(id="m-1", area="vendor")), "Misrouted"),
        (_message(_envelope(id="m-1", time=datetime(1970, 1, 1, tzinfo=UTC))), "ImplausibleTime"),
        (_message(_envelope(id="m-1", key={"Code": "EUR"})), "KeyMismatch"),
        (_message(_envelope(id="m-1", data={"Name": "Euro", "Colour": "blue"})), "UnknownField"),
        (_message(_envelope(id="m-1", data={"Name": "E" * 101})), "MappingError"),
    ],
)
async def test_failed_checks_dead_letter_with_their_own_reason_before_any_write(message, reason):
    """A message failing a check is dead-lettered at once with that check's reason; the sink sees nothing."""
    sink, settler = ScriptedSink(), FakeSettler()
    processor = _processor(sink)
    assert await processor.process(message, settler) == "dead-lettered"
    assert settler.calls[0][:2] == ("dead-letter", reason)
    assert sink.applied == []
    assert processor.metrics.counts["retried"] == 0


@pytest.mark.asyncio
async def test_a_replay_with_its_replay_id_is_applied():
    """A replay sent as <id>.replay-<n> with the original id and count beside it passes the id check."""
    sink, settler = ScriptedSink(), FakeSettler()
    message = _message()
    properties = {**message.application_properties, "dualbus_original_message_id": "m-1"}
    replayed = replace(
        message, message_id="m-1.replay-2", application_properties={**properties, "dualbus_replay_count": 2}
    )
    assert await _processor(sink).process(replayed, settler) == "applied"
    assert len(sink.applied) == 1


@pytest.mark.asyncio
async def test_a_missing_lookup_is_looked_for_again_on_the_lookup_schedule():
    """A change whose lookup's row is not there yet retries on the lookup schedule, then applies."""
    retry = WatchedRetry()
    sink = ScriptedSink(LookupMissingError("no group 10 yet", map_name="customers", field="CustomerGroupId"))
    processor = _processor(sink, retry=retry)
    assert await processor.process(_message(), FakeSettler()) == "applied"
    assert retry.asked == ["lookups", "retrying from 0.2 s"]


@pytest.mark.asyncio
async def test_a_failing_target_keeps_the_backoff_of_its_own():
    """A transient failure first retries on the message policy's own waits, not the lookup schedule."""
    retry = WatchedRetry()
    processor = _processor(ScriptedSink(TransientError("503")), retry=retry)
    assert await processor.process(_message(), FakeSettler()) == "applied"
    assert retry.asked == ["retrying from 0.5 s"]


@pytest.mark.asyncio
async def test_a_target_failing_once_the_lookup_is_there_gets_the_backoff_for_a_failing_target():
    """The lookup schedule lasts while the lookup is missing; a 503 after it goes on the slower backoff."""
    retry = WatchedRetry()
    missing = LookupMissingError("no group 10 yet", map_name="customers", field="CustomerGroupId")
    sink = ScriptedSink(missing, missing, TransientError("503"), TransientError("503"))
    processor = _processor(sink, retry=retry)
    assert await processor.process(_message(), FakeSettler()) == "applied"
    assert retry.asked == ["lookups", "retrying from 0.2 s", "retrying from 0.5 s"]
    assert processor.metrics.counts["retried"] == 4  # every attempt after the first, under either schedule


@pytest.mark.asyncio
async def test_the_attempts_limit_the_message_across_both_schedules():
    """Three attempts in all: one missing lookup and two 503s, however the schedules divide them."""
    missing = LookupMissingError("no group 10 yet", map_name="customers", field="CustomerGroupId")
    sink = ScriptedSink(missing, TransientError("503"), TransientError("503"), TransientError("503"))
    processor = _processor(sink, retry=MessageRetry(attempts=3))
    assert await processor.process(_message(), FakeSettler()) == "abandoned"
    assert len(sink.script) == 1  # the fourth answer was never asked for
    assert processor.metrics.counts["retried"] == 2


class _SlowSink(ScriptedSink):
    """A target whose every answer takes ``seconds`` (time passes for the budget), noting when each began."""

    def __init__(self, seconds: float, failure) -> None:
        super().__init__()
        self.seconds, self.failure, self.began = seconds, failure, []

    async def apply(self, _change):
        self.began.append(time.monotonic())
        await asyncio.sleep(self.seconds)  # the target's own answer time, not a wait for anything
        raise self.failure(self.began[-1] - self.began[0])


@pytest.mark.asyncio
async def test_the_budget_counts_from_the_first_attempt_across_the_switch():
    """Missing lookups for half the budget, then a failing target: no attempt starts past the budget, which
    runs from the first attempt, not from the switch of schedules."""

    def failure(since_first: float) -> Exception:
        if since_first < 0.5:
            return LookupMissingError("no group 10 yet", map_name="customers", field="CustomerGroupId")
        return TransientError("503")

    sink = _SlowSink(0.05, failure)
    retry = MessageRetry(budget_seconds=1.0, initial_wait=0.01, max_wait=0.01, jitter=0.0)
    with stamina.set_testing(False):  # the policy's own (tiny) waits, and its budget
        outcome = await _processor(sink, retry=retry).process(_message(), FakeSettler())
    assert outcome == "abandoned"
    # A budget counted again from the switch would go on until 1.5 s; 0.3 s is room for a busy machine.
    assert sink.began[-1] - sink.began[0] < 1.3
    assert any(isinstance(failure(b - sink.began[0]), TransientError) for b in sink.began)


def test_the_lookup_schedule_is_short_and_never_slower_than_the_policy():
    """0.2 s doubling to 4 s with 0.2 s of jitter; a policy already quicker keeps its own waits."""
    options = MessageRetry().for_lookups().stamina_options()
    assert (options["wait_initial"], options["wait_max"], options["wait_jitter"]) == (0.2, 4.0, 0.2)
    quick = MessageRetry(initial_wait=0.05, max_wait=1.0, jitter=0.05).for_lookups().stamina_options()
    assert (quick["wait_initial"], quick["wait_max"], quick["wait_jitter"]) == (0.05, 1.0, 0.05)
    assert MessageRetry().for_lookups().lookup_wait_seconds == MessageRetry().lookup_wait_seconds
