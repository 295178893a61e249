"""Stand-ins for unit tests: a recording SDK sender (handing out real batches) and F&O rows in memory."""

from __future__ import annotations

from typing import Any

from azure.servicebus import ServiceBusMessageBatch
from azure.servicebus.exceptions import MessageSizeExceededError

from dualbus.d365 import fo_entities
from dualbus.shared.envelope import Envelope
from dualbus.shared.errors import TransientError
from dualbus.shared.message_batches import envelopes_of


class RecordingSender:
    """Hands out real SDK batches of a chosen size and records what is sent."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.sent: list[ServiceBusMessageBatch] = []
        self.closed = False
        self.failing = False
        # Refuse batches of more messages than this, as a service that counts sizes differently would.
        self.refuse_over: int | None = None

    async def create_message_batch(self, max_size_in_bytes: int | None = None) -> ServiceBusMessageBatch:
        return ServiceBusMessageBatch(max_size_in_bytes=max_size_in_bytes or self.max_bytes)

    async def send_messages(self, batch: ServiceBusMessageBatch) -> None:
        if self.failing:
            raise TransientError("Service Bus is unavailable")
        if self.refuse_over is not None and len(batch) > self.refuse_over:
            # The SDK's own error; the publisher's boundary translates it.
            raise MessageSizeExceededError(message="The message size exceeds the limit.")
        self.sent.append(batch)

    async def close(self) -> None:
        self.closed = True


class RecordingClient:
    def __init__(self, max_bytes: int) -> None:
        self.senders: dict[str, RecordingSender] = {}
        self.max_bytes = max_bytes

    def get_topic_sender(self, topic_name: str) -> RecordingSender:
        return self.senders.setdefault(topic_name, RecordingSender(self.max_bytes))


def sent_envelopes(client: RecordingClient, topic: str | None = None) -> list[Envelope]:
    """Every envelope sent so far, in order (to one topic, or to all of them)."""
    senders = [client.senders[topic]] if topic else list(client.senders.values())
    return [
        envelope
        for sender in senders
        for batch in sender.sent
        for message in batch._messages
        for envelope in envelopes_of(message)
    ]


def _matches(row: dict[str, Any], key: dict[str, Any]) -> bool:
    # F&O compares key values without regard to case, as its SQL collation does.
    return all(str(row.get(name, "")).casefold() == str(value).casefold() for name, value in key.items())


class FakeFoReader:
    """F&O rows in memory, read the way FoReader reads them: by field values, and page by page."""

    def __init__(self, page_size: int = 2) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.page_size = page_size
        self.failing = False
        # Entity keys (value tuples) the pages pass over, as a row shifting under $skip paging would be.
        self.skipped_by_pages: set[tuple[str, ...]] = set()
        self.reads = 0

    def put(self, entity: str, row: dict[str, Any]) -> None:
        keys = fo_entities()[entity].keys
        self.remove(entity, {name: row[name] for name in keys})
        self.rows.setdefault(entity, []).append(dict(row))

    def remove(self, entity: str, key: dict[str, Any]) -> None:
        self.rows[entity] = [row for row in self.rows.get(entity, []) if not _matches(row, key)]

    async def current(self, schema, key, select):
        rows = await self.matching(schema, [key], select)
        return rows[0] if rows else None

    async def matching(self, schema, keys, select):  # noqa: ARG002 - every field is returned
        self._read()
        rows = self.rows.get(schema.entity_set, [])
        return [dict(row) for row in rows if any(_matches(row, dict(key)) for key in keys)]

    async def pages(self, entity, *, select=(), filter_=None, orderby=()):  # noqa: ARG002 - all rows, key order
        self._read()
        keys = fo_entities()[entity].keys
        rows = [dict(row) for row in self.rows.get(entity, [])]
        rows = [row for row in rows if tuple(str(row[k]) for k in keys) not in self.skipped_by_pages]
        for start in range(0, len(rows), self.page_size):
            yield rows[start : start + self.page_size]

    def _read(self) -> None:
        if self.failing:
            raise TransientError("F&O is unavailable")
        self.reads += 1
