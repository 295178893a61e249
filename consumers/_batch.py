"""OData ``$batch`` under the sinks: requests issued at the same moment travel as one HTTP request.

Dataverse's Web API and F&O's OData service both take it. Each record has at most one request in flight (its
changes are applied one after another), so gathering the requests of *different* records into one batch
keeps every record's order. Parts run in order and are asked to run independently (``Prefer:
odata.continue-on-error``); each answer goes back to the request that asked it, translated as a single
request's would be: 429 → ThrottledError, 5xx → TransientError, the rest returned. A service that stops at a
failed part anyway answers fewer parts, and those it never ran go again in the next batch.
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api
https://learn.microsoft.com/dynamics365/fin-ops-core/dev-itpro/data-entities/odata (batch requests)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson

from dualbus.shared.api import ApiClient, error_message, parse_retry_after
from dualbus.shared.errors import ThrottledError, TransientError
from dualbus.shared.http import Response, built_response, query_string

__all__ = ["BatchingApi", "Requester"]

_TOO_MANY_REQUESTS = 429
_SERVER_ERROR = 500
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


class Requester(Protocol):
    """What a sink needs from an API client: one request, one response."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,  # noqa: ANN401 - any JSON value
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        """Send one request; transient failures raise."""
        ...


@dataclass(slots=True)
class _Pending:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes | None
    answer: asyncio.Future[Response] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class BatchingApi:
    """Sends requests through ``api`` as ``$batch`` requests of up to ``max_parts`` parts."""

    def __init__(
        self,
        api: ApiClient,
        *,
        root: str,
        max_parts: int = 100,
        max_batches: int = 8,
        partial_per_second: float | None = None,
    ) -> None:
        """``root`` is the OData service root under the API client's URL (Dataverse: ``api/data/v9.2``,
        F&O: ``data``).

        Up to ``max_batches`` batches travel at once: requests that arrive while one is in flight go in the
        next without waiting for its answer (each record has one request in flight, so order holds).
        A batch that is not full goes at most ``partial_per_second`` times a second (None: at once): until
        then it takes the requests that come, so that steady traffic spends few of the user's requests.
        """
        self._api = api
        self._root = root.strip("/")
        self._max_parts = max_parts
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._batches = asyncio.Semaphore(max_batches)
        self.gathering = _Gathering()
        self._full = asyncio.Event()
        self._partial_every = 1 / partial_per_second if partial_per_second else 0.0
        self._last_sent = -math.inf

    @property
    def unbatched(self) -> ApiClient:
        """The client the batches travel through, for a request that must go on its own (WhoAmI)."""
        return self._api

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,  # noqa: ANN401 - any JSON value
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        """Queue one request for the next batch and wait for its own answer."""
        target = f"{self._api.base_url}/{path.lstrip('/')}"
        if params:
            target += "?" + query_string(params)
        body = orjson.dumps(json) if json is not None else None
        pending = _Pending(method, target, dict(headers or {}), body)
        self._enqueue([pending])
        return await pending.answer

    def _enqueue(self, parts: list[_Pending], *, again: bool = False) -> None:
        # Parts sent again go first: they have waited longest.
        if again:
            self._queue[:0] = parts
        else:
            self._queue.extend(parts)
        if len(self._queue) >= self._max_parts:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def aclose(self) -> None:
        """Wait for the batches in flight (and for the parts they send again)."""
        while busy := [task for task in (self._flusher, *self._in_flight) if task and not task.done()]:
            await asyncio.gather(*busy, return_exceptions=True)

    async def _flush(self) -> None:
        # One turn of the loop lets every record that is ready add its request to this batch.
        await asyncio.sleep(0)
        # Paced, or throttled lately (see _Gathering): the user's request budget is short, so a batch that
        # is not full waits for more requests.
        paced = self._last_sent + self._partial_every - asyncio.get_running_loop().time()
        window = max(paced, self.gathering.seconds)
        if window > 0 and len(self._queue) < self._max_parts:
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), window)
        while self._queue:
            # Waiting for a free batch slot lets more requests gather, so a busy target gets fuller batches.
            await self._batches.acquire()
            parts, self._queue = self._queue[: self._max_parts], self._queue[self._max_parts :]
            self._last_sent = asyncio.get_running_loop().time()
            task = asyncio.create_task(self._answer(parts))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _answer(self, parts: list[_Pending]) -> None:
        # A part whose waiter gave up while it queued (its session lost, shutdown) is not sent: the session's
        # next holder may be applying that change and those after it, and a late write would undo them (a
        # create sent after the record's delete brings the row back).
        parts = [part for part in parts if not part.answer.done()]
        if not parts:
            self._batches.release()
            return
        try:
            answers = await self._send(parts)
        except asyncio.CancelledError:
            # Shut down mid-flight: no waiter may hang on an answer that will never come.
            for part in parts:
                part.answer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which raises it
            for part in parts:
                if not part.answer.done():
                    part.answer.set_exception(exc)
            return
        finally:
            self._batches.release()
        self.gathering.answered(throttled=any(answer.status_code == _TOO_MANY_REQUESTS for answer in answers))
        # A part whose waiter was cancelled meanwhile (its session lost, shutdown) takes no answer.
        for part, answer in zip(parts, answers, strict=False):
            if not part.answer.done():
                _deliver(part, answer)
        unanswered = [part for part in parts[len(answers) :] if not part.answer.done()]
        if unanswered and answers and answers[-1].status_code >= HTTPStatus.BAD_REQUEST:
            # A service that stops at a batch's first failed request (OData's default, where the
            # continue-on-error preference is not honoured) ran none of the parts after it: they go again.
            self._enqueue(unanswered, again=True)
            return
        for part in unanswered:
            # Cut short after a success: whether those parts ran is unknown, so they fail, to be retried.
            part.answer.set_exception(TransientError("the batch answered fewer parts than it was sent"))

    async def _send(self, parts: list[_Pending]) -> list[Response]:
        try:
            return await self._post(parts)
        except ThrottledError:
            self.gathering.answered(throttled=True)
            raise

    async def _post(self, parts: list[_Pending]) -> list[Response]:
        boundary = f"batch_{uuid.uuid4()}"
        response = await self._api.request(
            "POST",
            f"{self._root}/$batch",
            content=_encode(parts, boundary),
            headers={
                "Content-Type": f"multipart/mixed; boundary={boundary}",
                "Prefer": "odata.continue-on-error",
            },
        )
        if response.status_code >= HTTPStatus.BAD_REQUEST:
            raise TransientError(f"$batch failed with {response.status_code}: {error_message(response)}")
        return _decode(response, parts)


class _Gathering:
    """How long a batch waits for more requests before it goes: none while the target answers, growing while
    it throttles.

    Dataverse limits the requests of each user (6000 in 5 minutes a web server, shared by every consumer and
    the producer of a deployment), and a $batch counts as one. Requests issued at the same moment already
    travel together; when the target throttles anyway, each batch waits a little for more (doubling from
    50 ms up to a second), so the same changes take fewer requests, and the wait shrinks again (by a tenth a
    batch) while the answers come.
    https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
    """

    FIRST, LONGEST, SHRINK = 0.05, 1.0, 0.9

    def __init__(self) -> None:
        self.seconds = 0.0

    def answered(self, *, throttled: bool) -> None:
        """Note one batch's answer: throttled (the batch, or one of its parts), or not."""
        if throttled:
            self.seconds = min(self.LONGEST, max(self.FIRST, self.seconds * 2))
        elif self.seconds:
            shrunk = self.seconds * self.SHRINK
            self.seconds = shrunk if shrunk >= self.FIRST / 2 else 0.0


def _deliver(part: _Pending, response: Response) -> None:
    status = response.status_code
    # A part's Retry-After is honoured as the whole request's is (shared/api.py), a 503's as a 429's.
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == _TOO_MANY_REQUESTS:
        part.answer.set_exception(
            ThrottledError(f"{_what(part)} was throttled: {error_message(response)}", retry_after=retry_after)
        )
    elif status >= _SERVER_ERROR:
        failed = f"{_what(part)} failed with {status}: {error_message(response)}"
        part.answer.set_exception(TransientError(failed, retry_after=retry_after))
    else:
        part.answer.set_result(response)


def _what(part: _Pending) -> str:
    return f"{part.method} {urlsplit(part.target).path}"


def _encode(parts: list[_Pending], boundary: str) -> bytes:
    chunks: list[bytes] = []
    for part in parts:
        lines = [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary", ""]
        lines.append(f"{part.method} {part.target} HTTP/1.1")
        headers = {"Accept": "application/json", **part.headers}
        if part.body is not None:
            headers["Content-Type"] = "application/json"
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        chunks.append(("\r\n".join(lines) + "\r\n\r\n").encode() + (part.body or b"") + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def _decode(response: Response, parts: list[_Pending]) -> list[Response]:
    match = _BOUNDARY.search(response.headers.get("Content-Type", ""))
    if match is None:
        raise TransientError("the $batch answer is not multipart")
    answers: list[Response] = []
    segments = response.content.replace(b"\r\n", b"\n").split(f"--{match.group(1)}".encode())
    for segment, part in zip(segments[1:], parts, strict=False):
        if segment.startswith(b"--"):
            break
        _, _, http = segment.lstrip(b"\n").partition(b"\n\n")
        head, _, body = http.partition(b"\n\n")
        status_line, *header_lines = head.decode("latin-1").split("\n")
        headers = [_header(line) for line in header_lines if ":" in line]
        status = int(status_line.split(" ")[1])
        answers.append(
            built_response(part.method, part.target, status, headers=headers, content=body.rstrip(b"\n"))
        )
    return answers


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip(), value.strip()
