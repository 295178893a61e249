"""Durable state in SQLite: messages, the sequence counter, duplicate-detection history, session state, and
the entities the administration API created, changed or deleted.

Changes are journalled in memory while the server handles a burst of frames and written in one
transaction by ``flush``; the server acknowledges sends and settlements only after that commit, so an
acknowledged operation survives a crash. Locks are never stored: after a restart every message is free.
"""

from __future__ import annotations

import logging
import pathlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from dualbus.sandbox.servicebus.entity import StoredMessage
from dualbus.sandbox.servicebus.errors import EmulatorStartError
from dualbus.sandbox.servicebus.message import SentMessage, parse_message

__all__ = ["Journal", "LoadedState", "MemoryJournal", "SqliteJournal"]

_LOG = logging.getLogger(__name__)

# Messages live in a rowid table keyed by an id of the journal's own: (entity, seq) is not unique across a
# topic's subscriptions, and a composite key on rows of a kilobyte makes every insert and delete rewrite
# several b-tree pages (SQLite advises against WITHOUT ROWID for rows that large). The journal maps
# (entity, seq) to the id in memory, so no second index is kept on disk.
_MESSAGES_TABLE = """
CREATE TABLE IF NOT EXISTS stored_messages (
    id INTEGER PRIMARY KEY, entity TEXT NOT NULL, seq INTEGER NOT NULL, state INTEGER NOT NULL,
    enqueued INTEGER NOT NULL, expires INTEGER, scheduled INTEGER, delivery_count INTEGER NOT NULL,
    durable INTEGER NOT NULL, priority INTEGER, ttl INTEGER, ann BLOB NOT NULL, ann_count INTEGER NOT NULL,
    bare BLOB NOT NULL
)"""
_OTHER_TABLES = (
    """CREATE TABLE IF NOT EXISTS dedup (
    entity TEXT NOT NULL, message_id TEXT NOT NULL, expires INTEGER NOT NULL,
    PRIMARY KEY (entity, message_id)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS session_state (
    entity TEXT NOT NULL, session TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (entity, session)
) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    # Ids of messages that left: appending a small row costs a settlement a third of deleting a kilobyte
    # row in place. The rows themselves are removed in bulk while the loop is idle, or every few thousand.
    "CREATE TABLE IF NOT EXISTS settled (id INTEGER PRIMARY KEY)",
    # One JSON document per queue or topic (a topic's holds its subscriptions and rules) written by the
    # administration API; it overrides the configuration's entity of that path, a tombstone included.
    "CREATE TABLE IF NOT EXISTS entity_documents (path TEXT PRIMARY KEY, document TEXT NOT NULL)",
)
_SCHEMA_VERSION = 2
# Version 1 kept messages in a WITHOUT ROWID table keyed by (entity, seq): carried over once, then dropped.
_MIGRATE_V1 = (
    """INSERT INTO stored_messages (entity, seq, state, enqueued, expires, scheduled, delivery_count, durable,
    priority, ttl, ann, ann_count, bare)
SELECT entity, seq, state, enqueued, expires, scheduled, delivery_count, durable, priority, ttl, ann,
    ann_count, bare FROM messages ORDER BY entity, seq""",
    "DROP TABLE messages",
)
_INSERT = "INSERT OR REPLACE INTO stored_messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_SETTLE = "INSERT INTO settled VALUES (?)"
_COMPACT = ("DELETE FROM stored_messages WHERE id IN (SELECT id FROM settled)", "DELETE FROM settled")
_COMPACT_AFTER = 4096
_UPDATE = "UPDATE stored_messages SET state=?, delivery_count=?, scheduled=? WHERE id=?"
_DEDUP = "INSERT OR REPLACE INTO dedup VALUES (?,?,?)"
_STATE_SET = "INSERT OR REPLACE INTO session_state VALUES (?,?,?)"
_STATE_DEL = "DELETE FROM session_state WHERE entity=? AND session=?"
_SEQ = "INSERT OR REPLACE INTO meta VALUES ('next_seq', ?)"
_DOCUMENT = "INSERT OR REPLACE INTO entity_documents VALUES (?,?)"
# An entity's path and everything under it: its dead-letter queue, a topic's subscriptions.
_FORGET = (
    "DELETE FROM dedup WHERE entity=?1 OR entity LIKE ?2 ESCAPE '\\'",
    "DELETE FROM session_state WHERE entity=?1 OR entity LIKE ?2 ESCAPE '\\'",
)


@dataclass(slots=True)
class LoadedState:
    """What a journal held at start-up."""

    messages: list[tuple[str, StoredMessage]]
    dedup: list[tuple[str, str, int]]
    session_state: list[tuple[str, str, bytes]]
    next_seq: int
    entity_documents: list[tuple[str, str]] = field(default_factory=list)


class Journal(Protocol):
    """Where the broker records changes; flushed once per burst of work."""

    def insert(self, entity: str, message: StoredMessage) -> None:
        """Record a new message."""

    def delete(self, entity: str, seq: int) -> None:
        """Record that a message left the entity."""

    def update(self, entity: str, message: StoredMessage) -> None:
        """Record a new state, delivery count or schedule."""

    def dedup(self, entity: str, message_id: str, expires_ms: int) -> None:
        """Record a message id for duplicate detection."""

    def session_state(self, entity: str, session_id: str, state: bytes | None) -> None:
        """Record (or clear, with None) a session's state."""

    def next_seq(self, value: int) -> None:
        """Record the next sequence number to hand out."""

    def entity_document(self, path: str, document: str) -> None:
        """Record the administration API's definition of the queue or topic at ``path``."""

    def forget(self, path: str) -> None:
        """Drop the duplicate-detection history and session states of a deleted entity and its children."""

    def flush(self) -> None:
        """Make everything recorded so far durable."""

    def idle(self) -> None:
        """Do deferred housekeeping: the server calls this when it has nothing else to do."""

    def load(self, now_ms: int) -> LoadedState:
        """Read back what was made durable; ``now_ms`` is the broker's clock (what has expired by now)."""

    def close(self) -> None:
        """Flush and release resources."""


class MemoryJournal:
    """A journal that keeps nothing: the emulator without a data directory."""

    def insert(self, entity: str, message: StoredMessage) -> None:
        """Keep nothing."""

    def delete(self, entity: str, seq: int) -> None:
        """Keep nothing."""

    def update(self, entity: str, message: StoredMessage) -> None:
        """Keep nothing."""

    def dedup(self, entity: str, message_id: str, expires_ms: int) -> None:
        """Keep nothing."""

    def session_state(self, entity: str, session_id: str, state: bytes | None) -> None:
        """Keep nothing."""

    def next_seq(self, value: int) -> None:
        """Keep nothing."""

    def entity_document(self, path: str, document: str) -> None:
        """Keep nothing."""

    def forget(self, path: str) -> None:
        """Keep nothing."""

    def flush(self) -> None:
        """Nothing to write."""

    def idle(self) -> None:
        """Nothing to tidy."""

    def load(self, now_ms: int) -> LoadedState:  # noqa: ARG002 - nothing stored, nothing expired
        """An empty start."""
        return LoadedState(messages=[], dedup=[], session_state=[], next_seq=1)

    def close(self) -> None:
        """Nothing to release."""


class SqliteJournal:
    """The journal in ``<data_dir>/servicebus.sqlite3`` (WAL mode, one transaction per flush)."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            # Opened by the caller's thread, then used only by the server loop's thread: never concurrently.
            self._db = sqlite3.connect(
                data_dir / "servicebus.sqlite3", isolation_level=None, check_same_thread=False
            )
            # The emulator is the database's only user: exclusive locking spares a lock round per commit.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the tail.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._open_schema()
            (last_id,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM stored_messages").fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise EmulatorStartError(f"cannot open the data directory: {exc}") from exc
        self._ops: list[tuple[str, tuple[Any, ...]]] = []
        self._seq: int | None = None
        self._ids: dict[tuple[str, int], int] = {}
        self._next_id = int(last_id) + 1
        self._settled = 0  # ids in the settled table whose rows are still stored

    def _open_schema(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        self._db.execute("BEGIN")
        for statement in (_MESSAGES_TABLE, *_OTHER_TABLES):
            self._db.execute(statement)
        if version < _SCHEMA_VERSION:
            tables = {
                name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if "messages" in tables:
                for statement in _MIGRATE_V1:
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        for statement in _COMPACT:
            self._db.execute(statement)
        self._db.execute("COMMIT")

    def insert(self, entity: str, message: StoredMessage) -> None:
        """Journal a new message with its sender's bytes."""
        key = (entity, message.seq)
        row_id = self._ids.get(key)
        if row_id is None:
            row_id = self._ids[key] = self._next_id
            self._next_id += 1
        env = message.env
        self._ops.append(
            (
                _INSERT,
                (
                    row_id,
                    entity,
                    message.seq,
                    message.state,
                    message.enqueued_ms,
                    message.expires_ms,
                    message.scheduled_ms,
                    message.delivery_count,
                    int(env.durable),
                    env.priority,
                    env.ttl_ms,
                    env.ann,
                    env.ann_count,
                    env.bare,
                ),
            )
        )

    def delete(self, entity: str, seq: int) -> None:
        """Journal a removal."""
        row_id = self._ids.pop((entity, seq), None)
        if row_id is not None:
            self._ops.append((_SETTLE, (row_id,)))
            self._settled += 1

    def update(self, entity: str, message: StoredMessage) -> None:
        """Journal a state or delivery-count change."""
        row_id = self._ids.get((entity, message.seq))
        if row_id is not None:
            params = (message.state, message.delivery_count, message.scheduled_ms, row_id)
            self._ops.append((_UPDATE, params))

    def dedup(self, entity: str, message_id: str, expires_ms: int) -> None:
        """Journal a message id seen by a duplicate-detecting entity."""
        self._ops.append((_DEDUP, (entity, message_id, expires_ms)))

    def session_state(self, entity: str, session_id: str, state: bytes | None) -> None:
        """Journal a session state change."""
        if state is None:
            self._ops.append((_STATE_DEL, (entity, session_id)))
        else:
            self._ops.append((_STATE_SET, (entity, session_id, state)))

    def next_seq(self, value: int) -> None:
        """Remember the counter; written once per flush."""
        self._seq = value

    def entity_document(self, path: str, document: str) -> None:
        """Journal an entity definition."""
        self._ops.append((_DOCUMENT, (path, document)))

    def forget(self, path: str) -> None:
        """Journal the removal of a deleted entity's history and session states."""
        pattern = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
        for statement in _FORGET:
            self._ops.append((statement, (path, pattern)))

    def flush(self) -> None:
        """Write the journalled changes in one transaction, grouping runs of the same statement."""
        if not self._ops and self._seq is None:
            return
        ops, self._ops = self._ops, []
        compact = self._settled >= _COMPACT_AFTER
        if len(ops) == 1 and self._seq is None and not compact:
            # One statement is atomic on its own; skipping BEGIN/COMMIT halves a lone settlement's cost.
            self._db.execute(*ops[0])
            return
        self._db.execute("BEGIN")
        start = 0
        while start < len(ops):
            end = start
            while end < len(ops) and ops[end][0] == ops[start][0]:
                end += 1
            self._db.executemany(ops[start][0], [params for _, params in ops[start:end]])
            start = end
        if self._seq is not None:
            self._db.execute(_SEQ, (self._seq,))
            self._seq = None
        if compact:
            self._compact()
        self._db.execute("COMMIT")

    def idle(self) -> None:
        """Remove the rows of settled messages now, while nothing waits on the journal."""
        if self._ops or self._seq is not None:
            self.flush()
        if not self._settled:
            return
        try:
            self._db.execute("BEGIN")
            self._compact()
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            # Housekeeping only: the settled ids already hide those rows, so the emulator carries on and
            # tries again when next idle (or at the next start).
            self._db.rollback()
            _LOG.warning("could not remove settled messages from the journal: %s", exc)

    def _compact(self) -> None:
        for statement in _COMPACT:
            self._db.execute(statement)
        self._settled = 0

    def load(self, now_ms: int) -> LoadedState:
        """Read every stored message, the dedup history, session states and the counter."""
        messages = list(self._messages())
        # Ids whose detection window has passed are of no further use; drop them once per start.
        self._db.execute("DELETE FROM dedup WHERE expires < ?", (now_ms,))
        dedup = [
            (e, m, int(x)) for e, m, x in self._db.execute("SELECT entity, message_id, expires FROM dedup")
        ]
        states = [(e, s, bytes(b)) for e, s, b in self._db.execute("SELECT * FROM session_state")]
        row = self._db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        highest = max((m.seq for _, m in messages), default=0)
        next_seq = max(int(row[0]) if row else 1, highest + 1)
        documents = [(p, d) for p, d in self._db.execute("SELECT path, document FROM entity_documents")]
        return LoadedState(
            messages=messages,
            dedup=dedup,
            session_state=states,
            next_seq=next_seq,
            entity_documents=documents,
        )

    def _messages(self) -> Iterator[tuple[str, StoredMessage]]:
        rows = self._db.execute("SELECT * FROM stored_messages ORDER BY entity, seq")
        self._ids.clear()
        for row_id, entity, seq, state, enqueued, expires, scheduled, count, *envelope in rows:
            self._ids[(entity, seq)] = row_id
            durable, priority, ttl, ann, ann_count, bare = envelope
            parsed = parse_message(bytes(bare))
            env = SentMessage(
                bare=bytes(bare),
                ann=bytes(ann),
                ann_count=ann_count,
                durable=bool(durable),
                priority=priority,
                ttl_ms=ttl,
                properties=parsed.properties,
                app_offset=parsed.app_offset,
                scheduled_ms=scheduled,
            )
            yield entity, StoredMessage(seq, env, enqueued, expires, count, state, scheduled)

    def close(self) -> None:
        """Flush what is left and close the database."""
        self.flush()
        self._db.close()
