"""What each twin committed, in commit order: who wrote which record, and the dualbus version mark it left.

Neither real system keeps such a log where a client can read it whole; the twins keep one so that a test or
a bench can check, after the fact, that no change was lost and none applied twice. ``GET
/_sandbox/writes?after=<sequence>`` on either twin (with a bearer token) answers ``{"value": [...]}``, oldest
first, up to ``PAGE`` entries after ``sequence``. The log lives in memory: a twin's restart starts a new one.
One sequence counts the writes of every twin in the process, so the logs of two twins run together (as
``dualbus sandbox`` runs them) merge into one order.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["PAGE", "Write", "WriteLog", "writes_endpoint"]

PAGE = 10_000
# Enough for a long bench; past it the oldest entries go (the log is a check, not a store), a tenth of it at
# a time, so that dropping them costs nothing per write.
_KEPT = 1_000_000
_DROPPED_AT_ONCE = _KEPT // 10
_SEQUENCE = itertools.count(1)
_SEQUENCE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Write:
    """One committed create, update or delete of one row."""

    sequence: int
    table: str  # the F&O entity set, or the Dataverse entity set
    key: Mapping[str, Any]  # the F&O key fields, or the Dataverse row id and alternate-key columns
    operation: str  # "upsert" | "delete"
    writer: str  # the F&O client id, or the Dataverse user id
    version: int | None  # the dualbus version mark the row holds after the write
    row_version: int | None  # the row's own version after the write: Dataverse's versionnumber
    time_us: int  # wall clock, microseconds since the epoch
    fields: Mapping[str, Any] = field(default_factory=dict)  # what the write changed: field -> new value


class WriteLog:
    """An append-only list of ``Write`` entries, the newest ``_KEPT`` at least and a tenth more at most."""

    def __init__(self) -> None:
        # In sequence order: a page after any sequence is found by bisection and sliced.
        self._entries: list[Write] = []
        self._lock = threading.Lock()

    def add(  # noqa: PLR0917 - one argument per field of the entry
        self,
        table: str,
        key: Mapping[str, Any],
        operation: str,
        writer: str,
        version: object,
        row_version: object = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Record one committed write; ``key`` and ``fields`` are kept as given (the caller's own copies)."""
        now = time.time_ns() // 1000
        with self._lock:
            # Numbered and appended in one step: each log is in sequence order (``after`` relies on it).
            with _SEQUENCE_LOCK:
                sequence = next(_SEQUENCE)
            entry = Write(
                sequence,
                table,
                key,
                operation,
                writer,
                _int(version),
                _int(row_version),
                now,
                fields if fields is not None else {},
            )
            self._entries.append(entry)
            if len(self._entries) > _KEPT + _DROPPED_AT_ONCE:
                del self._entries[:_DROPPED_AT_ONCE]

    def after(self, sequence: int, limit: int = PAGE) -> list[Write]:
        """Up to ``limit`` entries with a sequence above ``sequence``, oldest first.

        Found by bisection, not by reading the log from its start: a reader following a long log asks
        for the next page many times."""
        with self._lock:
            start = bisect.bisect_right(self._entries, sequence, key=_sequence_of)
            return self._entries[start : start + limit]


def _sequence_of(entry: Write) -> int:
    return entry.sequence


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def writes_endpoint(log_of: Callable[[Request], WriteLog]) -> Callable[[Request], Awaitable[Response]]:
    """A starlette endpoint serving ``log_of(request)``'s entries after ``?after=`` (default 0)."""

    async def endpoint(request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return JSONResponse({"error": {"code": "", "message": "'after' must be an integer"}}, 400)
        entries = [asdict(entry) for entry in log_of(request).after(after)]
        # A row's values are JSON already, but a twin may hold a date or a decimal: shown as text.
        return Response(orjson.dumps({"value": entries}, default=str), media_type="application/json")

    return endpoint
