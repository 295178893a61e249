"""The pages of a delta: rows changed since a delta token, then rows deleted since it.

Dataverse lists "all new or updated records first (sorted by version number) followed by deleted records",
"returns a collection of 5,000 records" and lets a larger one be paged through ("Use change tracking to
synchronize data with external systems", https://github.com/MicrosoftDocs/powerapps-docs/blob/
0494d1bb431955b8452296398559bab8f9526bd4/powerapps-docs/developer/data-platform/
use-change-tracking-synchronize-data-external-systems.md). The page says so of the SDK's message; the twin
pages the Web API's delta as it pages a tracked snapshot: ``odata.maxpagesize``, else 5,000 a page, a page
with more to come carrying ``@odata.nextLink`` and only the last one the next ``@odata.deltaLink``.

A page starts after the last entry served, by its version, and covers only the versions the first page saw:
a row changed while a client pages leaves this delta for the next one, instead of shifting the later pages
so that a row between them is never served.

Every page token the twin hands out (a delta's, a tracked snapshot's, a query's) is ``opaque`` text.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from dualbus.sandbox.dataverse.errors import bad_request
from dualbus.sandbox.dataverse.store import Row

__all__ = ["DeltaCursor", "delta_page", "opaque", "opened"]

_CHANGED, _DELETED = 0, 1
_FIELDS = 3


@dataclass(frozen=True, slots=True)
class DeltaCursor:
    """Where a delta's next page starts: after entry ``after`` (part, version), up to version ``upto``."""

    upto: int
    after: tuple[int, int] = (_CHANGED, 0)

    def token(self) -> str:
        """The opaque ``$skiptoken`` of the page this cursor starts."""
        return opaque(f"delta:{self.upto}:{self.after[0]}:{self.after[1]}")

    @classmethod
    def read(cls, token: str) -> DeltaCursor:
        """The cursor a ``$skiptoken`` of :meth:`token` names; a 400 for any other."""
        kind, *numbers = opened(token).split(":")
        if kind != "delta" or len(numbers) != _FIELDS or not all(n.isdigit() for n in numbers):
            raise bad_request("The $skiptoken is not one this service issued.")
        upto, part, version = map(int, numbers)
        return cls(upto, (part, version))


def opaque(text: str) -> str:
    """A paging token that says nothing to the client: ``text`` in URL-safe base64."""
    return base64.urlsafe_b64encode(text.encode()).decode()


def opened(token: str) -> str:
    """The text of an :func:`opaque` token; empty for one this service did not make."""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def delta_page(
    changed: list[Row], deleted: list[tuple[int, str]], cursor: DeltaCursor, size: int
) -> tuple[list[Row | str], DeltaCursor | None]:
    """The page at ``cursor`` (changed rows, then deleted ids) and the cursor of the next page, if any."""
    entries: list[tuple[tuple[int, int], Row | str]] = [
        ((_CHANGED, int(row["versionnumber"])), row) for row in changed
    ]
    entries.extend(((_DELETED, version), row_id) for version, row_id in deleted)
    remaining = [entry for entry in entries if entry[0] > cursor.after]
    page = remaining[:size]
    following = DeltaCursor(cursor.upto, page[-1][0]) if len(remaining) > size else None
    return [entry for _, entry in page], following
