"""The start-up check that a tenant has dualbus's fields: retried while the service cannot answer, given up at
once on stop, and stopped with every gap named when it answers (the twins answer it for real in
tests/integration/consumers/test_unprepared_tenant.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dualbus.shared.errors import TransientError
from dualbus.shared.prerequisites import PrerequisiteError, require_prepared
from dualbus.shared.retry import RetryPolicy

_TINY = RetryPolicy(on=(Exception,), attempts=None, initial_wait=0.001, max_wait=0.002, jitter=0.0)
_WANTED = {"Currencies": ("DualbusSourceVersion", "DualbusWriteDigest")}


def _not_declared(name: str) -> httpx.Response:
    """F&O's refusal of a $select naming a property the entity lacks (sandbox/fo/service.py)."""
    text = f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.DataEntities.Currency'."
    inner = {"message": text}
    return httpx.Response(
        400, json={"error": {"code": "", "message": "An error has occurred.", "innererror": inner}}
    )


class _Service:
    """Fails ``failures`` times, then answers with ``answers`` in turn (200 once they run out)."""

    def __init__(self, failures: int = 0, answers: list[httpx.Response] | None = None) -> None:
        self.failures = failures
        self.answers = list(answers or [])
        self.asked: list[dict[str, str] | None] = []
        self.hang = asyncio.Event()  # set: a request never returns
        self.reached = asyncio.Event()  # set by the first request

    async def request(
        self, method: str, path: str, *, params: dict[str, str] | None = None
    ) -> httpx.Response:
        assert (method, path) == ("GET", "data/Currencies")
        self.asked.append(params)
        self.reached.set()
        if self.hang.is_set():
            await asyncio.Event().wait()
        if len(self.asked) <= self.failures:
            raise TransientError("GET data/Currencies failed: ConnectError")
        return self.answers.pop(0) if self.answers else httpx.Response(200, json={"value": []})


@pytest.mark.asyncio
async def test_a_service_that_cannot_answer_is_asked_again_until_it_does() -> None:
    """Transient failures are retried; the answer "all there" ends the check; one row at most is asked for."""
    service = _Service(failures=3)
    await asyncio.wait_for(require_prepared(service, "fo", _WANTED, root="data", retry=_TINY), 5)
    assert len(service.asked) == 4
    assert service.asked[-1] == {"$select": "DualbusSourceVersion,DualbusWriteDigest", "$top": "1"}


@pytest.mark.asyncio
async def test_each_missing_field_is_asked_without_the_ones_found_missing_and_all_are_named() -> None:
    """The service names one lacking property per answer: the check goes on without it and names every one."""
    service = _Service(answers=[_not_declared("DualbusSourceVersion"), _not_declared("DualbusWriteDigest")])
    with pytest.raises(PrerequisiteError) as raised:
        await require_prepared(service, "fo", _WANTED, root="data", retry=_TINY)
    assert [params and params["$select"] for params in service.asked] == [
        "DualbusSourceVersion,DualbusWriteDigest",
        "DualbusWriteDigest",
    ]
    assert str(raised.value).startswith(
        "F&O is not prepared for dualbus: Currencies has no DualbusSourceVersion, DualbusWriteDigest ("
    )


@pytest.mark.asyncio
async def test_a_stop_ends_the_check_at_once_even_with_a_question_in_flight() -> None:
    """A producer or consumer told to stop while the service hangs does not wait for the answer."""
    service, stop = _Service(), asyncio.Event()
    service.hang.set()
    checking = asyncio.create_task(
        require_prepared(service, "fo", _WANTED, root="data", stop=stop, retry=_TINY)
    )
    await asyncio.wait_for(service.reached.wait(), 5)
    stop.set()
    await asyncio.wait_for(checking, 1)
    assert len(service.asked) == 1
