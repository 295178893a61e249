"""Dead-letter operations against the bus: peek, replay and purge, per area subscription.

Replay sends first and completes the dead-letter copy after, so a crash in between leaves a duplicate
(absorbed by duplicate detection and the consumers' stale guard), never a loss.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from dualbus.ops.audit import AuditLog
from dualbus.ops.bodies import MessageBody
from dualbus.ops.deadletters import DeadLetter, DeadLetterFilter, edit_body, replay_message
from dualbus.ops.edits import check_message_edits, envelope_fields
from dualbus.shared.bus_calls_sync import (
    abandon_now,
    complete_now,
    opened_now,
    peek_now,
    receive_now,
    renew_lock_now,
    send_now,
    topic_sender_now,
)
from dualbus.shared.bus_types import (
    AmqpMessage,
    BusClient,
    OutgoingMessage,
    ReceivedMessage,
    Receiver,
    dead_letter_receiver,
)
from dualbus.shared.errors import BusError, ConfigError, DualbusError
from dualbus.shared.topology import Topology

__all__ = [
    "VIEW_LIMIT",
    "OperationReport",
    "ReplacementBody",
    "Route",
    "iter_dead_letters",
    "peek_dead_letters",
    "purge",
    "replay",
    "replay_body",
    "select_routes",
]

_PEEK_PAGE = 250
# What a view that refreshes (the console, the alert monitor, the demo's report) reads of one route: its
# oldest letters, enough to see what failed, without reading a storm of letters over and over. Export,
# list, show, replay and purge read every letter.
VIEW_LIMIT = 10_000
_RECEIVE_PAGE = 100
_RECEIVE_WAIT_SECONDS = 1.0
# Less than this left of a letter's lock, and it is renewed before its replay or purge.
_LOCK_MARGIN = timedelta(seconds=15)
# Pages in a row of letters the pass had seen already (their locks ended) before it gives up.
_STALE_PAGES = 3


@dataclass(frozen=True, slots=True)
class Route:
    """One area's subscription: where dead-letters live and where replays go back to."""

    area: str
    topic: str
    subscription: str
    # How long the route's consumers remember a delete (the topic's and subscription's message TTL, the
    # lesser, as consumers/_runtime.py prunes tombstones); None: not known, nothing refused for its age.
    tombstone_ttl: timedelta | None = None


@dataclass(frozen=True, slots=True)
class ReplacementBody:
    """A body to replay in place of a letter's own (from an edited export file), with the message id of the
    letter it was exported from: a sequence number names another letter once its queue was recreated."""

    message_id: str | None
    body: MessageBody


@dataclass(slots=True)
class OperationReport:
    """What a replay or purge did, per message id."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    matched: int = 0
    # The message ids and sequence numbers of the selected letters, to tell which asked-for ids were found.
    matched_ids: set[str] = field(default_factory=set)


def select_routes(
    topology: Topology, areas: frozenset[str] = frozenset(), subscriptions: frozenset[str] = frozenset()
) -> list[Route]:
    """The subscriptions to look at (each topic's unroutable one too); ConfigError for an unknown area."""
    for area in areas:
        topology.topic(area)  # raises TopologyError naming the known areas
    return [
        Route(
            area=topic.area,
            topic=topic.name,
            subscription=sub.name,
            tombstone_ttl=min(topic.default_message_time_to_live, sub.default_message_time_to_live),
        )
        for topic, sub in topology.subscriptions()
        if (not areas or topic.area in areas) and (not subscriptions or sub.name in subscriptions)
    ]


def peek_dead_letters(client: BusClient, route: Route, *, limit: int | None = None) -> list[DeadLetter]:
    """Every dead-letter of one route (the first ``limit`` if given), without locking or removing any."""
    page = _PEEK_PAGE if limit is None else max(1, min(_PEEK_PAGE, limit))
    return list(itertools.islice(iter_dead_letters(client, route, page=page), limit))


def iter_dead_letters(client: BusClient, route: Route, *, page: int = _PEEK_PAGE) -> Iterator[DeadLetter]:
    """Every dead-letter of one route, peeked page by page, without locking or removing any.

    No cap: an export, a count or a purge's question that stopped at some number would say "all" of a queue
    it had read only the start of (and a purge then removed more than it had shown).
    """
    with opened_now(_dead_letter_receiver(client, route)) as receiver:
        next_sequence = 0
        while found := peek_now(receiver, max_count=page, from_sequence=next_sequence):
            yield from (_letter(message, route) for message in found)
            next_sequence = (found[-1].sequence_number or 0) + 1


def replay(
    client: BusClient,
    route: Route,
    selection: DeadLetterFilter,
    *,
    audit: AuditLog,
    edits: Mapping[str, Any] | None = None,
    bodies: Mapping[int, ReplacementBody] | None = None,
    force: bool = False,
) -> OperationReport:
    """Send each selected dead-letter back to its own subscription (edited if asked), then complete it.

    ``bodies`` replaces the body of a message by sequence number (from an edited export file); a letter
    whose message id is not the one the body was exported from fails, sent nothing and kept. A letter older
    than the route's ``tombstone_ttl`` fails too, unless ``force``: a delete of its record made after it
    may be forgotten by now, and the replay would create the record again.
    """
    now = datetime.now(UTC)
    report = OperationReport()
    with opened_now(topic_sender_now(client, route.topic)) as sender:

        def resend(letter: DeadLetter) -> None:
            replacement = (bodies or {}).get(letter.sequence_number)
            body = replay_body(letter, route, replacement, edits, force=force, now=now)
            outgoing = replay_message(letter, body=body)
            send_now(sender, outgoing)  # a refused send fails this message only
            details = {"replay_message_id": _message_id(outgoing), "edits": dict(edits or {})}
            _audited(audit, "dlq.replay", "sent", route, letter, reason=letter.reason, **details)

        def left(letter: DeadLetter, error: str) -> None:
            # Sent, but still dead-lettered: a later replay's resend is absorbed by duplicate detection
            # (within its window; after it, the consumers' stale guard skips the version applied already).
            _audited(audit, "dlq.replay", "not-completed", route, letter, error=error)

        _for_each_selected(
            client, route, selection=selection, now=now, report=report, action=resend, not_completed=left
        )
    return report


def replay_body(
    letter: DeadLetter,
    route: Route,
    replacement: ReplacementBody | None,
    edits: Mapping[str, Any] | None,
    *,
    force: bool,
    now: datetime,
) -> MessageBody:
    """The body a replay sends for ``letter`` (the file's if edited there, then ``edits``); ConfigError for
    a letter the replay refuses (too old without ``force``, another message's file body, an edit its
    entity cannot take). The dry run asks the same, so that it shows what the replay would do."""
    if not force:
        _young_enough(letter, route, now)
    chosen = _chosen_body(letter, _replacement(letter, replacement))
    if edits:
        # An edit this message's entity cannot take fails the message; nothing is sent.
        check_message_edits(envelope_fields(chosen), edits)
    return edit_body(chosen, edits or {})


def _audited(
    audit: AuditLog, action: str, outcome: str, route: Route, letter: DeadLetter, **details: object
) -> None:
    """One audit line about one letter of ``route``."""
    audit.record(
        action,
        outcome,
        area=route.area,
        subscription=route.subscription,
        message_id=letter.message_id,
        **details,
    )


def _young_enough(letter: DeadLetter, route: Route, now: datetime) -> None:
    """ConfigError for a letter older than its consumers remember deletes (see ``replay``)."""
    ttl = route.tombstone_ttl
    if ttl is not None and letter.age(now) >= ttl:
        raise ConfigError(
            f"letter {letter.sequence_number} of {letter.area}/{letter.subscription} is older than the "
            f"{ttl.days} days its consumers remember a delete: replayed now, it could create again a record "
            "deleted since; check the record, then replay it with --force"
        )


def _replacement(letter: DeadLetter, replacement: ReplacementBody | None) -> MessageBody | None:
    """The replacement's body, when it was exported from this very letter; ConfigError otherwise."""
    if replacement is None:
        return None
    if replacement.message_id is not None and replacement.message_id != letter.message_id:
        raise ConfigError(
            f"letter {letter.sequence_number} of {letter.area}/{letter.subscription} is message "
            f"{letter.message_id}, but the file's body came from message {replacement.message_id}: "
            "not replayed (the queue holds other letters now; export it again)"
        )
    return replacement.body


def _chosen_body(letter: DeadLetter, from_file: MessageBody | None) -> MessageBody:
    """The file's body if it was edited; else the letter's own (an unedited JSON body keeps its bytes)."""
    own = letter.message_body
    if from_file is None or _canonical(from_file) == _canonical(own):
        return own
    return from_file


def _canonical(body: MessageBody) -> bytes:
    return orjson.dumps(body.to_json(), option=orjson.OPT_SORT_KEYS)


def _message_id(message: OutgoingMessage | AmqpMessage) -> str | None:
    if isinstance(message, OutgoingMessage):
        return message.message_id
    return str(message.properties.message_id) if message.properties else None


def purge(
    client: BusClient, route: Route, selection: DeadLetterFilter, *, audit: AuditLog
) -> OperationReport:
    """Remove each selected dead-letter for good, recording each in the audit log."""
    report = OperationReport()

    def forget(letter: DeadLetter) -> None:
        _audited(audit, "dlq.purge", "removed", route, letter, reason=letter.reason)

    def kept(letter: DeadLetter, error: str) -> None:
        # The "removed" line is written first (no letter goes unaudited); this one says it did not happen.
        _audited(audit, "dlq.purge", "not-removed", route, letter, error=error)

    now = datetime.now(UTC)
    _for_each_selected(
        client, route, selection=selection, now=now, report=report, action=forget, not_completed=kept
    )
    return report


def _for_each_selected(
    client: BusClient,
    route: Route,
    *,
    selection: DeadLetterFilter,
    now: datetime,
    report: OperationReport,
    action: Callable[[DeadLetter], None],
    not_completed: Callable[[DeadLetter, str], None] | None = None,
) -> None:
    """Lock every dead-letter in turn; run ``action`` then complete the selected ones, release the rest;
    ``not_completed`` hears of a selected one whose action ran but whose completion failed.

    Whatever stops the pass (an unexpected error included), the messages it still holds are released on
    the way out rather than left locked for the lock duration.
    """
    if selection.is_empty:
        raise ConfigError("no dead-letters selected: give ids, reasons, areas, an age, or --all")
    one_pass = _Pass(route, selection, now, report, action, not_completed)
    held: dict[int, ReceivedMessage] = {}
    # The letters a pass holds keep their locks to its end (renewed as they near it), so that it sees each
    # once. One whose lock ended all the same comes back: it is not acted on again, and pages of nothing
    # but such letters, over and over, end the pass with an error rather than let it go round for ever.
    seen: set[int] = set()
    stale_pages = 0
    with opened_now(_dead_letter_receiver(client, route)) as receiver:
        try:
            while batch := receive_now(receiver, max_count=_RECEIVE_PAGE, max_wait=_RECEIVE_WAIT_SECONDS):
                # Held from receipt: a message is let go only by completing it.
                held.update((id(message), message) for message in batch)
                fresh = [message for message in batch if _number(message) not in seen]
                stale_pages = 0 if fresh else stale_pages + 1
                if stale_pages >= _STALE_PAGES:
                    raise BusError(
                        f"{route.area}/{route.subscription}: the pass kept getting back letters it had "
                        "seen (their locks ended); what it did is in the audit trail: run it again"
                    )
                for message in fresh:
                    seen.add(_number(message))
                    if one_pass.settle(receiver, message):
                        del held[id(message)]
                _keep_locked(receiver, held.values())
        finally:
            # Held messages were locked only so that one pass sees each message once; give them back.
            _release(receiver, list(held.values()))


@dataclass(frozen=True, slots=True)
class _Pass:
    """One pass over a route's dead-letters: which to select and what to do with each."""

    route: Route
    selection: DeadLetterFilter
    now: datetime
    report: OperationReport
    action: Callable[[DeadLetter], None]
    not_completed: Callable[[DeadLetter, str], None] | None = None

    def settle(self, receiver: Receiver, message: ReceivedMessage) -> bool:
        """Run the action on a selected message and complete it; False if not selected or it failed."""
        letter = _letter(message, self.route)
        if not self.selection.matches(letter, self.now):
            return False
        self.report.matched += 1
        self.report.matched_ids |= {letter.message_id, str(letter.sequence_number)}
        try:
            _locked_long_enough(receiver, message)
            self.action(letter)
        except DualbusError as exc:
            self.report.failed[letter.message_id] = str(exc)
            return False
        try:
            complete_now(receiver, message)  # a lock lost on one message fails that message, not the pass
        except DualbusError as exc:
            self.report.failed[letter.message_id] = str(exc)
            if self.not_completed is not None:
                self.not_completed(letter, str(exc))
            return False
        self.report.done.append(letter.message_id)
        return True


def _number(message: ReceivedMessage) -> int:
    return message.sequence_number or 0


def _keep_locked(receiver: Receiver, held: Iterable[ReceivedMessage]) -> None:
    """Renew the held letters' locks that near their end; one that cannot be renewed comes back (seen)."""
    for message in held:
        try:
            _locked_long_enough(receiver, message)
        except BusError:
            continue


def _locked_long_enough(receiver: Receiver, message: ReceivedMessage) -> None:
    """Renew a lock about to end before acting on its letter: a replay sent on an ended lock could not be
    completed, and its letter would stay to be replayed again."""
    until = message.locked_until_utc
    if until is not None and until - datetime.now(UTC) < _LOCK_MARGIN:
        renew_lock_now(receiver, message)


def _release(receiver: Receiver, held: list[ReceivedMessage]) -> None:
    for message in held:
        try:
            abandon_now(receiver, message)
        except BusError:
            continue  # an expired lock releases the message just the same


def _dead_letter_receiver(client: BusClient, route: Route) -> Receiver:
    return dead_letter_receiver(client, route.topic, route.subscription)


def _letter(message: ReceivedMessage, route: Route) -> DeadLetter:
    return DeadLetter.from_message(
        message, area=route.area, topic=route.topic, subscription=route.subscription
    )
