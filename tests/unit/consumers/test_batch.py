"""Requests issued together travel as one $batch, and each caller gets its own answer or error."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dualbus.consumers._batch import BatchingApi
from dualbus.shared.api import ApiClient
from dualbus.shared.errors import ThrottledError, TransientError

from .fakes import FixedToken

URL = "https://org.example"


class FakeDataverse:
    """Answers $batch requests part by part with scripted statuses, recording what arrived."""

    def __init__(
        self,
        statuses: dict[str, int],
        batch_status: int = 200,
        *,
        stop_on_error: bool = False,
        answer_at_most: int | None = None,
    ) -> None:
        self.statuses = statuses
        self.batch_status = batch_status
        self.stop_on_error = stop_on_error
        self.answer_at_most = answer_at_most
        self.batches: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/t"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        if self.batch_status != 200:
            return httpx.Response(
                self.batch_status, headers={"Retry-After": "3"}, json={"error": {"message": "slow"}}
            )
        boundary = request.headers["Content-Type"].split("boundary=")[1]
        lines = [line for line in request.content.decode().split("\r\n") if " HTTP/1.1" in line]
        self.batches.append(lines)
        parts = []
        for line in lines[: self.answer_at_most]:
            name = line.split("/api/data/v9.2/")[1].split(" ")[0]
            status = self.statuses.get(name, 200)
            extra = "Retry-After: 2\r\n" if status in {429, 503} else ""
            body = f'{{"name": "{name}"}}'
            parts.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 {status} X\r\n"
                f"Content-Type: application/json\r\n{extra}\r\n{body}\r\n"
            )
            if self.stop_on_error and status >= 400:
                break  # as an OData service that does not honour odata.continue-on-error
        content = "".join(parts) + f"--{boundary}--\r\n"
        return httpx.Response(
            200, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}, content=content
        )


async def _api(fake: FakeDataverse):
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    return http, BatchingApi(ApiClient(URL, FixedToken(), http), root="api/data/v9.2")


@pytest.mark.asyncio
async def test_concurrent_requests_share_one_batch_and_get_their_own_answers():
    """Three requests made at once arrive as one $batch, in order, and each gets its own response."""
    fake = FakeDataverse({})
    http, api = await _api(fake)
    async with http:
        answers = await asyncio.gather(*(api.request("GET", f"api/data/v9.2/row{n}") for n in range(3)))
    assert len(fake.batches) == 1
    assert [line.split(" ")[0] for line in fake.batches[0]] == ["GET", "GET", "GET"]
    assert [a.json()["name"] for a in answers] == ["row0", "row1", "row2"]


@pytest.mark.asyncio
async def test_a_throttled_part_raises_for_its_caller_only():
    """A 429 part becomes ThrottledError with its Retry-After for that caller; the others succeed."""
    fake = FakeDataverse({"row1": 429, "row2": 404})
    http, api = await _api(fake)
    async with http:
        results = await asyncio.gather(
            *(api.request("PATCH", f"api/data/v9.2/row{n}", json={"n": n}) for n in range(3)),
            return_exceptions=True,
        )
    assert results[0].status_code == 200
    assert isinstance(results[1], ThrottledError)
    assert results[1].retry_after == 2.0
    assert results[2].status_code == 404


@pytest.mark.asyncio
async def test_a_part_unavailable_for_a_while_says_how_long_to_wait():
    """A 503 part's Retry-After reaches its caller's retry, as a 429 part's does and a 503 batch's did."""
    fake = FakeDataverse({"row1": 503})
    http, api = await _api(fake)
    async with http:
        results = await asyncio.gather(
            *(api.request("PATCH", f"api/data/v9.2/row{n}", json={"n": n}) for n in range(2)),
            return_exceptions=True,
        )
    assert results[0].status_code == 200
    assert isinstance(results[1], TransientError)
    assert results[1].retry_after == 2.0


@pytest.mark.asyncio
async def test_parts_after_a_failure_that_stopped_the_batch_go_again_in_the_next():
    """A service that stops at a failed part ran none after it: they go again, and each gets its answer."""
    fake = FakeDataverse({"row1": 412}, stop_on_error=True)
    http, api = await _api(fake)
    async with http:
        answers = await asyncio.gather(
            *(api.request("PATCH", f"api/data/v9.2/row{n}", json={"n": n}) for n in range(4))
        )
        await api.aclose()
    assert [[line.split("/v9.2/")[1].split(" ")[0] for line in batch] for batch in fake.batches] == [
        ["row0", "row1", "row2", "row3"],
        ["row2", "row3"],
    ]
    assert [a.status_code for a in answers] == [200, 412, 200, 200]
    assert [a.json()["name"] for a in answers] == ["row0", "row1", "row2", "row3"]


@pytest.mark.asyncio
async def test_parts_left_out_after_a_success_fail_transiently_and_are_not_sent_again():
    """An answer cut short after a success says nothing of the parts left out: their callers retry."""
    fake = FakeDataverse({}, answer_at_most=2)
    http, api = await _api(fake)
    async with http:
        results = await asyncio.gather(
            *(api.request("PATCH", f"api/data/v9.2/row{n}", json={"n": n}) for n in range(3)),
            return_exceptions=True,
        )
        await api.aclose()
    assert [r.status_code for r in results[:2]] == [200, 200]  # type: ignore[union-attr]
    assert isinstance(results[2], TransientError)
    assert len(fake.batches) == 1


@pytest.mark.asyncio
async def test_a_throttled_batch_fails_every_caller_transiently():
    """When the $batch request itself is throttled, every waiting caller gets the ThrottledError."""
    http, api = await _api(FakeDataverse({}, batch_status=429))
    async with http:
        results = await asyncio.gather(
            *(api.request("GET", f"api/data/v9.2/row{n}") for n in range(2)), return_exceptions=True
        )
    assert all(isinstance(r, ThrottledError) and r.retry_after == 3.0 for r in results)
    assert all(isinstance(r, TransientError) for r in results)


async def _apart(api: BatchingApi, names: list[str], gap: float) -> list[object]:
    """Requests issued ``gap`` seconds apart, as records of different sessions reach their writes."""

    async def one(index: int, name: str) -> object:
        await asyncio.sleep(index * gap)
        return await api.request("GET", f"api/data/v9.2/{name}")

    return await asyncio.gather(*(one(i, n) for i, n in enumerate(names)), return_exceptions=True)


@pytest.mark.asyncio
async def test_requests_a_moment_apart_go_at_once_while_the_target_does_not_throttle():
    fake = FakeDataverse({})
    http, api = await _api(fake)
    async with http:
        await _apart(api, ["a", "b", "c"], gap=0.01)
    assert len(fake.batches) == 3
    assert api.gathering.seconds == 0.0


@pytest.mark.asyncio
async def test_after_throttling_batches_wait_for_more_requests_and_the_wait_shrinks_again():
    """A throttled part makes the next batches gather what comes within the wait: fewer requests."""
    fake = FakeDataverse({"hot": 429})
    http, api = await _api(fake)
    async with http:
        [throttled] = await _apart(api, ["hot"], gap=0)
        assert isinstance(throttled, ThrottledError)
        assert api.gathering.seconds == pytest.approx(0.05)
        answers = await _apart(api, ["a", "b", "c"], gap=0.01)
        assert len(fake.batches) == 2  # the three gathered into one
        assert [a.json()["name"] for a in answers] == ["a", "b", "c"]
        assert api.gathering.seconds < 0.05
        for _ in range(7):  # 0.05 s shrinking by a tenth a batch, to nothing under half of it
            await api.request("GET", "api/data/v9.2/d")
    assert api.gathering.seconds == 0.0


@pytest.mark.asyncio
async def test_a_full_batch_goes_without_waiting_out_the_gathering():
    fake = FakeDataverse({})
    http, api = await _api(fake)
    api.gathering.seconds = 1.0
    async with http:
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(api.request("GET", f"api/data/v9.2/r{n}") for n in range(100)))
        waited = asyncio.get_running_loop().time() - started
    assert len(fake.batches) == 1
    assert waited < 0.5


@pytest.mark.asyncio
async def test_paced_batches_that_are_not_full_take_what_comes_until_their_turn():
    """At 5 batches a second, requests 10 ms apart after a first batch travel together in the next one."""
    fake = FakeDataverse({})
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    api = BatchingApi(ApiClient(URL, FixedToken(), http), root="api/data/v9.2", partial_per_second=5.0)
    async with http:
        await _apart(api, ["first"], gap=0)
        answers = await _apart(api, ["a", "b", "c"], gap=0.01)
        full = await asyncio.gather(*(api.request("GET", f"api/data/v9.2/r{n}") for n in range(100)))
    assert [len(batch) for batch in fake.batches] == [1, 3, 100]
    assert [a.json()["name"] for a in answers] == ["a", "b", "c"]
    assert len(full) == 100


@pytest.mark.asyncio
async def test_a_request_whose_caller_gave_up_while_it_queued_is_never_sent():
    """A write queued behind a batch in flight, whose caller is cancelled meanwhile (its session lost), is
    dropped: sent later, it could undo what the session's next holder applied after it."""
    fake, arrived, go_on = FakeDataverse({}), asyncio.Event(), asyncio.Event()

    async def slow_first(request: httpx.Request) -> httpx.Response:
        if b"/first " in request.content:
            arrived.set()
            await go_on.wait()
        return fake(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(slow_first))
    api = BatchingApi(ApiClient(URL, FixedToken(), http), root="api/data/v9.2", max_batches=1)
    async with http:
        first = asyncio.create_task(api.request("PATCH", "api/data/v9.2/first"))
        await asyncio.wait_for(arrived.wait(), 5)  # in flight, holding the only batch slot
        late = asyncio.create_task(api.request("PATCH", "api/data/v9.2/late"))
        kept = asyncio.create_task(api.request("PATCH", "api/data/v9.2/kept"))
        for _ in range(5):  # both queued, their batch waiting for the slot
            await asyncio.sleep(0)
        late.cancel()
        go_on.set()
        await first
        await kept
        await api.aclose()
    sent = [line.split("/api/data/v9.2/")[1].split(" ")[0] for batch in fake.batches for line in batch]
    assert sent == ["first", "kept"]
