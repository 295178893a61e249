"""Per-record order inside a batch: messages of one record stay in sequence, different records run at once.

A session holds a bucket of many records, and order matters only among the changes of one record, so a
batch splits into one queue per record (entity + key) that is worked through in order, the queues side by
side. A body that cannot be read gets its own queue: it is dead-lettered on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

import orjson

from dualbus.shared.messages import body_bytes

__all__ = ["EVERY_RECORD", "record_groups", "record_name"]

# The group of a batch holding a body of many changes (a batch body): its records are not known before the
# body is read, so the whole batch is one group, worked after everything before it and before anything after.
EVERY_RECORD = "\x00many"


class _Message(Protocol):
    @property
    def body(self) -> object: ...  # a received message's body: bytes, or an iterable of data sections


M = TypeVar("M", bound=_Message)


def record_groups(messages: Sequence[M]) -> dict[str, list[M]]:
    """The messages by the name of the record they change (``record_name``), each group in arrival order;
    a batch holding a batch body is one group named ``EVERY_RECORD``."""
    groups: dict[str, list[M]] = {}
    for index, message in enumerate(messages):
        record = _record(message.body)
        if record is EVERY_RECORD:
            return {EVERY_RECORD: list(messages)}
        # Named apart from any record (a record's name is a JSON list), so it is never queued behind one.
        groups.setdefault(record or f"unreadable:{id(message)}:{index}", []).append(message)
    return groups


def _record(body: object) -> str | None:
    # Whatever a body holds, it is grouped, never raised out of the batch: the message is dead-lettered
    # when processed. A key nested too deep for orjson to write again (TypeError) raised here, and the
    # session was taken and dropped until its messages, good ones with it, reached MaxDeliveryCount.
    try:
        payload = orjson.loads(body_bytes(body))
        if isinstance(payload, list):
            return EVERY_RECORD
        if not isinstance(payload, dict) or not isinstance(payload.get("key"), dict):
            return None
        return record_name(payload.get("entity"), payload["key"])
    except (TypeError, ValueError):  # EnvelopeError, orjson's errors
        return None


def record_name(entity: object, key: object) -> str:
    """One name for a record, the same for a raw body and a read envelope: its entity and key, keys sorted."""
    return orjson.dumps([entity, key], option=orjson.OPT_SORT_KEYS).decode()
