"""How the F&O producer knows a row state that dualbus wrote itself, and leaves it unpublished.

F&O records no modifier that a data entity exposes, so a write by dualbus comes back as a data event like
any user's edit, where the Dataverse producer skips its own writes by their modifier. So, with each create
or update, the F&O sink writes beside ``DualbusSourceVersion`` the field ``DualbusWriteDigest``: a digest of
the row as that write leaves it (``write_digest``), over the map's name, the row's key, the version written,
and every field the map carries from F&O towards Dataverse (``echo_fields``). Every one of those must be a
field the change carries (its value unchanged is taken from the row the sink read, which its ``If-Match``
keeps as it was): a field only F&O sets may hold an edit of an F&O user not published yet, and a digest over
it would make that edit dualbus's. Where one is not carried, the sink writes no digest.

The F&O producer reads the row after an event and leaves it unpublished (``is_echo``) only when its key,
fields and version mark still give the digest the row holds, *and* the producer has published the row
before, at an older mark. Publishing it would only send Dataverse back the change it came from (the
to-dataverse consumer would find it had made that state itself and write nothing). A user's edit after
dualbus's write changes a carried field, so the digest no longer matches and the edit is published; an edit
that restores what dualbus wrote, after an edit in between was published, leaves the mark where the producer
last published it, and is published too (dualbus's writes always raise the mark: the sink writes only
changes newer than the row's mark). A row the producer holds no state of (never published, or deleted or
left the map since) is published whatever its digest says: a row copied with its marks, re-keyed, restored
or back in the map is then no echo. So a row dualbus creates comes back once, as before, and where the sink
cannot know a field's value after its write it writes no digest, with the same effect: a digest that does
not match only costs a message the consumer finds unchanged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import orjson

from dualbus.d365 import FO_VERSION_FIELD, FO_WRITE_DIGEST_FIELD
from dualbus.shared.maps import TableMap, derived

__all__ = ["NO_DIGEST", "echo_fields", "is_echo", "write_digest"]

# What the field holds on a row dualbus has not written, or wrote without knowing the row's state after.
NO_DIGEST = ""


def echo_fields(table_map: TableMap) -> tuple[str, ...]:
    """The F&O fields a write digest of ``table_map`` covers: what its changes towards Dataverse carry,
    without the row's key (by which the row is found: F&O answers ``dataAreaId`` in lower case) and
    dualbus's own marks."""
    return derived(table_map, "fo_echo_fields", lambda: _echo_fields(table_map))


def _echo_fields(table_map: TableMap) -> tuple[str, ...]:
    if not table_map.carries("dataverse"):
        return ()
    skipped = {*table_map.fo_key, FO_VERSION_FIELD, FO_WRITE_DIGEST_FIELD}
    return tuple(name for name in table_map.carried_from("fo") if name not in skipped)


def write_digest(table_map: TableMap, row: Mapping[str, object], version: int) -> str:
    """The digest of ``row`` (the F&O row as it is, or as a write leaves it) with mark ``version``, or
    ``NO_DIGEST`` when ``row`` lacks its key or a field the digest covers (its value after the write is not
    known)."""
    fields = echo_fields(table_map)
    if not fields or any(name not in row for name in (*fields, *table_map.fo_key)):
        return NO_DIGEST
    values = {name: _canonical(row[name]) for name in fields}
    # F&O compares keys without case, and answers dataAreaId in lower case whatever was written.
    key = {name: _key_part(row[name]) for name in table_map.fo_key}
    encoded = orjson.dumps(
        {"map": table_map.name, "key": key, "version": version, "values": values},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(encoded).hexdigest()


def is_echo(table_map: TableMap, row: Mapping[str, object], mark: int, published_mark: int | None) -> bool:
    """Whether ``row``, read with version mark ``mark``, is the state dualbus's last write left, unchanged.

    ``published_mark``: the mark of the row's state the producer published or recorded last; None when it
    holds none, and the row is then no echo. A mark no newer than it means dualbus has not written the row
    since then.
    """
    held = row.get(FO_WRITE_DIGEST_FIELD)
    if not isinstance(held, str) or held == NO_DIGEST or published_mark is None or mark <= published_mark:
        return False
    return held == write_digest(table_map, row, mark)


def _key_part(value: object) -> object:
    return value.casefold() if isinstance(value, str) else _canonical(value)


def _canonical(value: object) -> object:
    """One form for the values F&O and the sink consider equal (1 and 1.0, as the sink compares them)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value
