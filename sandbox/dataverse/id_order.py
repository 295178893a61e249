"""A table's row ids in order, kept in order as rows come and go, in chunks of about a thousand ids.

One sorted list of every id made each create move, on average, half the table's ids along (a table of half
a million rows spent more time there than in the create itself); sorting anew on each read was worse still.
In chunks, a create or a delete moves at most one chunk's ids, and a page at any offset is found by walking
the chunks' lengths, not the ids: neither grows with the table more than a few steps per thousand rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

__all__ = ["IdOrder"]

_CHUNK = 1000  # ids per chunk when one is split, or when an order is built from many ids at once


class IdOrder:
    """Row ids in ascending order: add, discard, count, iterate, and take a slice by position."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        ordered = sorted(ids)
        self._chunks: list[list[str]] = [ordered[i : i + _CHUNK] for i in range(0, len(ordered), _CHUNK)]
        self._count = len(ordered)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        for chunk in self._chunks:
            yield from chunk

    def add(self, row_id: str) -> None:
        """Put an id in its place (the caller adds only ids not held already)."""
        if not self._chunks:
            self._chunks.append([row_id])
        else:
            at = self._chunk_for(row_id)
            chunk = self._chunks[at]
            bisect.insort(chunk, row_id)
            if len(chunk) > 2 * _CHUNK:
                self._chunks[at : at + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
        self._count += 1

    def discard(self, row_id: str) -> None:
        """Take an id out, if it is held."""
        if not self._chunks:
            return
        at = self._chunk_for(row_id)
        chunk = self._chunks[at]
        place = bisect.bisect_left(chunk, row_id)
        if place < len(chunk) and chunk[place] == row_id:
            del chunk[place]
            self._count -= 1
            if not chunk:
                del self._chunks[at]

    def between(self, start: int, stop: int) -> list[str]:
        """The ids at positions ``start`` (included) to ``stop`` (excluded), as a list slice would give."""
        found: list[str] = []
        skipped = 0
        for chunk in self._chunks:
            if skipped + len(chunk) > start and skipped < stop:
                found.extend(chunk[max(0, start - skipped) : stop - skipped])
            skipped += len(chunk)
            if skipped >= stop:
                break
        return found

    def after(self, last: str | None, count: int) -> list[str]:
        """Up to ``count`` ids above ``last`` (from the first id when None), in order: a page that starts
        after the last id served, which an id taken out or put in before it does not shift."""
        found: list[str] = []
        first = 0 if last is None else bisect.bisect_right(self._chunks, last, key=lambda chunk: chunk[-1])
        for chunk in self._chunks[first:]:
            begin = 0 if last is None else bisect.bisect_right(chunk, last)
            found.extend(chunk[begin : begin + count - len(found)])
            if len(found) >= count:
                break
        return found

    def _chunk_for(self, row_id: str) -> int:
        """The chunk an id belongs in: the first whose last id is not below it, else the last one."""
        at = bisect.bisect_left(self._chunks, row_id, key=lambda chunk: chunk[-1])
        return min(at, len(self._chunks) - 1)
