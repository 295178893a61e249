"""The target's circuit: failures in a row open it, one probe at a time tests the target, answers close it."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import stamina

from dualbus.consumers import (
    AdaptiveLimit,
    ApplyResult,
    Circuit,
    CircuitPolicy,
    CircuitSink,
    ConsumerMetrics,
    ContendedError,
    MessageProcessor,
    MessageRetry,
    TargetChange,
)
from dualbus.shared.errors import LockLostError, PermanentError, ThrottledError, TransientError
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import Direction

from .bus_fakes import RecordingSettler, currency_message

MAPS = load_maps()
CHANGE = TargetChange(table_map=MAPS["currency"], key={"isocurrencycode": "EUR"}, source_version=1)
FAST = CircuitPolicy(threshold=1, first_probe=0.01, max_probe=0.02)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Target:
    """A sink whose target is down until told otherwise; counts calls and the most in flight at once."""

    def __init__(self, *, down: bool = True, retry_after: float | None = None) -> None:
        self.down = down
        self.retry_after = retry_after
        self.calls = self.failures = self.in_flight = self.most_in_flight = 0
        self.failed = asyncio.Event()

    async def apply(self, _change):
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.down:
                self.failures += 1
                self.failed.set()
                raise TransientError("503 Service Unavailable", retry_after=self.retry_after)
            return ApplyResult.APPLIED
        finally:
            self.in_flight -= 1

    async def aclose(self):
        return None


class Scripted:
    """A sink that raises the scripted errors in turn, then applies."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)

    async def apply(self, _change):
        if self.errors:
            raise self.errors.pop(0)
        return ApplyResult.APPLIED

    async def aclose(self):
        return None


@pytest.fixture(autouse=True)
def real_waits():
    with stamina.set_testing(False):
        yield


async def _open(circuit: Circuit) -> None:
    sink = CircuitSink(Scripted(TransientError("down")), circuit, max_wait=5.0)
    with pytest.raises(TransientError):
        await sink.apply(CHANGE)
    assert circuit.is_open


@pytest.mark.asyncio
async def test_failures_below_the_threshold_pass_through_with_their_own_retry_after():
    """Fewer failures in a row than the threshold leave it closed; the error keeps its Retry-After."""
    circuit = Circuit(CircuitPolicy(threshold=3))
    sink = CircuitSink(
        Scripted(TransientError("a", retry_after=7.0), TransientError("b")), circuit, max_wait=5
    )
    with pytest.raises(TransientError) as first:
        await sink.apply(CHANGE)
    with pytest.raises(TransientError):
        await sink.apply(CHANGE)
    assert first.value.retry_after == 7.0
    assert not circuit.is_open
    assert await sink.apply(CHANGE) is ApplyResult.APPLIED


@pytest.mark.asyncio
async def test_once_open_the_retry_waits_on_the_circuit_not_on_a_backoff():
    """The failure that opens it is re-raised with a zero Retry-After: the circuit paces the retry."""
    circuit = Circuit(CircuitPolicy(threshold=2))
    sink = CircuitSink(Scripted(TransientError("a"), TransientError("b")), circuit, max_wait=5)
    with pytest.raises(TransientError):
        await sink.apply(CHANGE)
    with pytest.raises(TransientError) as opening:
        await sink.apply(CHANGE)
    assert circuit.is_open
    assert opening.value.retry_after == 0.0


@pytest.mark.asyncio
async def test_one_probe_at_a_time_and_the_first_success_releases_every_waiter():
    """While open only one apply reaches the target at once; when one succeeds all waiting ones go on."""
    target = Target()
    sink = CircuitSink(target, Circuit(FAST), max_wait=30.0)
    await _open(sink.circuit)
    waiting = [asyncio.create_task(sink.apply(CHANGE)) for _ in range(20)]
    for _ in range(3):
        target.failed.clear()
        await asyncio.wait_for(target.failed.wait(), timeout=5)
    assert target.most_in_flight == 1
    target.down = False
    results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), timeout=5)
    # Each failed probe fails its own apply (the processor retries it); every other waiter applies once.
    failed_probes = [r for r in results if isinstance(r, TransientError)]
    assert len(failed_probes) == target.failures >= 3
    assert results.count(ApplyResult.APPLIED) == 20 - len(failed_probes)
    assert target.calls == 20
    assert not sink.circuit.is_open


@pytest.mark.asyncio
async def test_probes_come_at_growing_intervals_up_to_the_cap():
    """The first probe waits first_probe; each failed probe doubles the wait up to max_probe."""
    clock = Clock()
    circuit = Circuit(CircuitPolicy(threshold=1, first_probe=1.0, max_probe=3.0), clock=clock)
    circuit.failed(None, None)
    waits = []
    for _ in range(4):
        waits.append(circuit.probe_due_in)
        clock.now += circuit.probe_due_in
        probe = await circuit.admit(1.0)
        assert probe is not None
        circuit.failed(probe, None)
    assert waits == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.asyncio
async def test_a_probe_honours_retry_after():
    """A Retry-After longer than the interval puts the next probe off that long (within its cap)."""
    clock = Clock()
    circuit = Circuit(CircuitPolicy(threshold=1, first_probe=1.0, max_retry_after=30.0), clock=clock)
    circuit.failed(None, 8.0)
    assert circuit.probe_due_in == 8.0
    clock.now += 8.0
    probe = await circuit.admit(1.0)
    circuit.failed(probe, 300.0)
    assert circuit.probe_due_in == 30.0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "error",
    [ThrottledError("429", retry_after=1.0), ContendedError("busy row"), PermanentError("400", reason="x")],
)
async def test_an_answering_target_never_opens_it_and_closes_it_when_open(error):
    """Throttling, a contended row and a refusal are answers: they neither count nor keep it open."""
    circuit = Circuit(CircuitPolicy(threshold=1, first_probe=0.0))
    never = CircuitSink(Scripted(error), Circuit(CircuitPolicy(threshold=1)), max_wait=5)
    with pytest.raises(type(error)):
        await never.apply(CHANGE)
    assert not never.circuit.is_open
    await _open(circuit)
    with pytest.raises(type(error)):
        await CircuitSink(Scripted(error), circuit, max_wait=5).apply(CHANGE)
    assert not circuit.is_open


@pytest.mark.asyncio
async def test_waiting_on_an_open_circuit_is_bounded():
    """An apply waits at most max_wait on an open circuit, then fails transiently for its retry budget."""
    circuit = Circuit(CircuitPolicy(threshold=1, first_probe=60.0))
    await _open(circuit)
    with pytest.raises(TransientError, match="circuit open"):
        await CircuitSink(Target(down=False), circuit, max_wait=0.05).apply(CHANGE)


@pytest.mark.asyncio
async def test_a_cancelled_probe_passes_its_turn_on():
    """A probe cancelled mid-request (its session lost) lets the next waiter probe, at once."""
    circuit = Circuit(CircuitPolicy(threshold=1, first_probe=0.0))
    await _open(circuit)
    stuck = asyncio.Event()

    class Hanging:
        async def apply(self, _change):
            stuck.set()
            await asyncio.Event().wait()

    probe = asyncio.create_task(CircuitSink(Hanging(), circuit, max_wait=5).apply(CHANGE))
    await asyncio.wait_for(stuck.wait(), timeout=5)
    waiter = asyncio.create_task(CircuitSink(Target(down=False), circuit, max_wait=5).apply(CHANGE))
    probe.cancel()
    assert await asyncio.wait_for(waiter, timeout=5) is ApplyResult.APPLIED


@pytest.mark.asyncio
async def test_an_outage_is_waited_out_together_and_nothing_is_given_up():
    """Messages in flight during an outage wait on one circuit, not on backoffs of their own, and all land."""
    target = Target()
    metrics = ConsumerMetrics(area="currency", direction="to-dataverse")
    processor = MessageProcessor(
        area="currency",
        direction=Direction.TO_DATAVERSE,
        maps=MAPS,
        sink=CircuitSink(target, Circuit(FAST), max_wait=600.0),
        limit=AdaptiveLimit(32),
        # A backoff of a message's own would be 30 s: far beyond the bound below.
        retry=MessageRetry(budget_seconds=600.0, initial_wait=30.0, max_wait=30.0),
        metrics=metrics,
    )
    settler = RecordingSettler()
    working = [
        asyncio.create_task(processor.process(currency_message(f"C{n:02d}", 4), settler)) for n in range(30)
    ]
    while target.failures < 30 + 3:  # the 30 in flight when it opened, then three probes
        target.failed.clear()
        await asyncio.wait_for(target.failed.wait(), timeout=5)
    target.down = False
    outcomes = await asyncio.wait_for(asyncio.gather(*working), timeout=10)
    assert outcomes == ["applied"] * 30
    assert sorted(call[0] for call in settler.calls) == ["complete"] * 30
    assert metrics.counts["retried"] == target.failures
    assert metrics.counts["abandoned"] == metrics.counts["dead-lettered"] == 0


class Updating:
    """A sink that runs the change's before_update hook, as a sink does before writing an existing row."""

    def __init__(self) -> None:
        self.writes = 0

    async def apply(self, change):
        await change.updating()
        self.writes += 1
        return ApplyResult.APPLIED

    async def aclose(self):
        return None


@pytest.mark.asyncio
@pytest.mark.parametrize("error", [TransientError("state save timed out"), LockLostError("the lock went")])
async def test_a_failure_of_the_changes_own_hook_is_not_the_targets(error):
    """A save of the session's state that fails before an update (Service Bus, not the target) neither
    opens the circuit nor closes an open one; the failure reaches the caller as it was."""

    async def failing_save() -> None:
        raise error

    change = replace(CHANGE, before_update=failing_save)
    closed = CircuitSink(Updating(), Circuit(CircuitPolicy(threshold=1)), max_wait=5)
    with pytest.raises(type(error)) as raised:
        await closed.apply(change)
    assert raised.value is error
    assert not closed.circuit.is_open
    circuit = Circuit(CircuitPolicy(threshold=1, first_probe=0.0))
    await _open(circuit)
    with pytest.raises(type(error)):
        await CircuitSink(Updating(), circuit, max_wait=5).apply(change)
    assert circuit.is_open
