"""Reading what the consumers wrote: target rows by natural key, and seeding what lookups point at."""

from __future__ import annotations

import asyncio
import re

import httpx

from dualbus.consumers import DataverseSink, FoSink, Sink, TargetChange, target_changes
from dualbus.consumers._batch import BatchingApi
from dualbus.consumers._dataverse import API_ROOT
from dualbus.consumers._fo import ODATA_ROOT
from dualbus.shared.api import ApiClient
from dualbus.shared.envelope import Envelope
from dualbus.shared.topology import Direction
from tests.twin_settings import IssuedTokens

from .conftest import CLIENT_ID, SECRET, Pipeline
from .samples import fo_seed_rows, seed_events


def changes_of(pipeline: Pipeline, event: Envelope, direction: Direction) -> list[TargetChange]:
    """The target changes an event implies, as the consumer computes them."""
    return target_changes(event, area=event.area, direction=direction, maps=pipeline.maps)


def target_row(pipeline: Pipeline, change: TargetChange, direction: Direction) -> dict | None:
    """The target row a change addresses, read straight from the twin's store."""
    table_map = change.table_map
    if direction is Direction.TO_DATAVERSE:
        rows = pipeline.dataverse.store.rows(table_map.dataverse_table)
        plain = {k: v for k, v in change.key.items() if table_map.lookup(k) is None}
    else:
        rows = pipeline.fo.twin.store.rows(table_map.fo_entity)
        plain = dict(change.key)
    for row in rows:
        if all(str(row.get(k, "")).lower() == str(v).lower() for k, v in plain.items()):
            return row
    return None


def api_sink(
    pipeline: Pipeline, direction: Direction, http: httpx.AsyncClient, *, batch: bool = False
) -> Sink:
    """A sink for ``direction``'s target, as the consumer builds it (through $batch if asked)."""
    twin = pipeline.dataverse if direction is Direction.TO_DATAVERSE else pipeline.fo
    api = ApiClient(twin.url, IssuedTokens(twin, client_id=CLIENT_ID, secret=SECRET), http)
    if direction is Direction.TO_DATAVERSE:
        return DataverseSink(BatchingApi(api, root=API_ROOT) if batch else api)
    return FoSink(BatchingApi(api, root=ODATA_ROOT) if batch else api)


async def seed(pipeline: Pipeline, direction: Direction) -> None:
    """Create on the target what sample rows look up: company, currency, terms, groups, units, ..."""
    if direction is Direction.TO_FO:
        await asyncio.to_thread(seed_fo, pipeline)
        return
    async with httpx.AsyncClient() as http:
        sink = api_sink(pipeline, direction, http)
        for event in seed_events(pipeline.maps):
            for change in changes_of(pipeline, event, direction):
                await sink.apply(change)
        await sink.aclose()


def seed_fo(pipeline: Pipeline) -> None:
    """Create the seed rows in F&O as another application would, each after what it refers to."""
    with pipeline.fo.client("workload") as client:
        for entity, record in fo_seed_rows(pipeline.maps):
            response = client.post(f"/data/{entity}", json=record, params={"cross-company": "true"})
            assert response.status_code == 201, response.text


class FlakyProxy:
    """A loopback TCP proxy in front of a twin that can be switched off, cutting every connection.

    Off, it refuses connections, or with ``failing_status`` set answers every request with that status
    (a 503 from a gateway in front of a target that is down), never reaching the twin. ``lose_answers``
    lets the next writes through to the twin and cuts their connections when the answers come back, so
    the twin applied what the client never hears of.
    """

    def __init__(self, target_port: int, *, failing_status: int | None = None) -> None:
        self.target_port = target_port
        self.failing_status = failing_status
        self.is_up = True
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[None]] = set()
        self._answers_to_lose = 0
        self._lose_under = ""
        self.lost: list[str] = []  # "METHOD path" of each request whose answer was cut off

    def lose_answers(self, count: int, *, under: str) -> None:
        """Cut off the answers of the next ``count`` POST, PATCH or DELETE requests under path ``under``."""
        self._answers_to_lose, self._lose_under = count, under

    async def start(self) -> str:
        """Listen on a free port; returns the base URL to use instead of the twin's."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def down(self) -> None:
        """Refuse new connections and drop the open ones, as an outage does."""
        self.is_up = False
        for writer in list(self._open):
            writer.close()

    def up(self) -> None:
        """Serve again."""
        self.is_up = True

    async def stop(self) -> None:
        """Close the listener and every connection, and wait for their tasks to end."""
        self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._serving:
            # Their connections are closed, so each ends on its own (a cancelled one is logged as an error).
            await asyncio.wait(self._serving, timeout=5.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        if not self.is_up:
            self.refused += 1
            if self.failing_status is not None:
                await _answer_failing(reader, writer, self.failing_status)
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._open.update((writer, upstream_writer))
        doomed = asyncio.Event()  # set when the request in flight is one whose answer is to be lost
        try:
            await asyncio.gather(
                self._pipe_requests(reader, upstream_writer, doomed),
                _pipe(upstream_reader, writer, cut=doomed),
            )
        finally:
            self._open.difference_update((writer, upstream_writer))
            writer.close()
            upstream_writer.close()

    async def _pipe_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, doomed: asyncio.Event
    ) -> None:
        """Pass requests on one by one (a head, then a Content-Length body), dooming those to lose."""
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                method, path = head.split(b" ", 2)[:2]
                lengths = [
                    line.split(b":", 1)[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                body = await reader.readexactly(int(lengths[0]) if lengths else 0)
                request = f"{method.decode()} {path.decode()}"
                under = path.decode().startswith(self._lose_under)
                if self._answers_to_lose and _is_write(method, path, body) and under:
                    self._answers_to_lose -= 1
                    self.lost.append(request)
                    doomed.set()
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
            pass
        finally:
            writer.close()


_WRITES = frozenset({b"POST", b"PATCH", b"DELETE"})
# A write inside a $batch body: a part's request line (the sinks read through $batch too, as POSTs).
_WRITE_PART = re.compile(rb"^(?:POST|PATCH|DELETE) \S+ HTTP/1\.1\r?$", re.MULTILINE)


def _is_write(method: bytes, path: bytes, body: bytes) -> bool:
    if path.split(b"?", 1)[0].endswith(b"/$batch"):
        return _WRITE_PART.search(body) is not None
    return method in _WRITES


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, cut: asyncio.Event | None = None
) -> None:
    """Pass bytes on; once ``cut`` is set, the next bytes (the doomed request's answer) end the connection."""
    try:
        while chunk := await reader.read(65536):
            if cut is not None and cut.is_set():
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _answer_failing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int) -> None:
    """Read one request and answer it with ``status`` and an OData error body, then close."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lengths = [
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ]
        await reader.readexactly(int(lengths[0]) if lengths else 0)
        body = b'{"error":{"code":"0x80040216","message":"The service is unavailable."}}'
        writer.write(
            b"HTTP/1.1 %d Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, len(body), body)
        )
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError):
        pass
