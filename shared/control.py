"""Operator commands to consumers — pause and resume one route — as messages on the control queue.

The latest command per route wins. Consumers *peek* the queue and never receive from it, so every replica
sees every command and a restarted consumer learns the current state. Works the same on Azure and on the
emulator: it needs nothing but send and peek.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceivedMessage
from azure.servicebus.aio import ServiceBusClient as AsyncServiceBusClient
from azure.servicebus.aio import ServiceBusReceiver as AsyncServiceBusReceiver

from dualbus.shared.bus import bus_errors
from dualbus.shared.errors import DualbusError
from dualbus.shared.messages import body_bytes

__all__ = [
    "PauseWatcher",
    "RouteState",
    "command_message",
    "fold_states",
    "read_states",
    "route_name",
    "send_command",
]

_log = logging.getLogger(__name__)
_PEEK_PAGE = 250
_COMMAND_TYPE = "dualbus.control.pause"


def route_name(area: str, subscription: str) -> str:
    """The name of one consumer route, e.g. ``customer/to-fo``."""
    return f"{area}/{subscription}"


@dataclass(frozen=True, slots=True)
class RouteState:
    """Whether a route is paused, by whom, when and why (the latest command for it)."""

    route: str
    paused: bool
    by: str
    at: datetime
    reason: str = ""


def command_message(state: RouteState) -> ServiceBusMessage:
    """The control-queue message that sets a route's state."""
    body = {
        "route": state.route,
        "paused": state.paused,
        "by": state.by,
        "at": state.at.isoformat(),
        "reason": state.reason,
    }
    return ServiceBusMessage(
        orjson.dumps(body),
        subject=_COMMAND_TYPE,
        content_type="application/json",
        application_properties={"route": state.route, "paused": state.paused},
    )


def fold_states(messages: Iterable[ServiceBusReceivedMessage]) -> dict[str, RouteState]:
    """The current state per route from control messages in sequence order; malformed ones are skipped."""
    states: dict[str, RouteState] = {}
    for message in messages:
        try:
            state = _parse(message)
        except DualbusError as exc:
            _log.warning("ignoring a malformed control message", extra={"error": str(exc)})
            continue
        states[state.route] = state
    return states


def _parse(message: ServiceBusReceivedMessage) -> RouteState:
    try:
        # body_bytes: an AMQP value body of integers was made into bytes that long ([2**62]: MemoryError).
        payload = orjson.loads(body_bytes(message.body))
        return RouteState(
            route=str(payload["route"]),
            paused=bool(payload["paused"]),
            by=str(payload.get("by", "")),
            at=datetime.fromisoformat(payload["at"]),
            reason=str(payload.get("reason", "")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DualbusError(f"not a control command: {exc}") from exc


def send_command(
    client: ServiceBusClient, queue: str, *, route: str, paused: bool, by: str, reason: str = ""
) -> RouteState:
    """Pause or resume ``route`` for every consumer replica."""
    state = RouteState(route=route, paused=paused, by=by, at=datetime.now(UTC), reason=reason)
    with bus_errors(), client.get_queue_sender(queue) as sender:
        sender.send_messages(command_message(state))
    return state


def read_states(client: ServiceBusClient, queue: str) -> dict[str, RouteState]:
    """Every route's current state, from the whole control queue (peeked, nothing removed)."""
    messages: list[ServiceBusReceivedMessage] = []
    with bus_errors(), client.get_queue_receiver(queue, prefetch_count=0) as receiver:
        next_sequence = 0
        while page := receiver.peek_messages(max_message_count=_PEEK_PAGE, sequence_number=next_sequence):
            messages.extend(page)
            next_sequence = (page[-1].sequence_number or 0) + 1
    return fold_states(messages)


class PauseWatcher:
    """Follows the control queue for one route; consumers check ``paused`` or await ``wait_resumed()``."""

    def __init__(
        self, client: AsyncServiceBusClient, queue: str, route: str, *, interval: float = 2.0
    ) -> None:
        self._client = client
        self._queue = queue
        self._route = route
        self._interval = interval
        self._next_sequence = 0
        # One receiver kept open between polls: opening one costs a connection, its TLS and a token.
        self._receiver: AsyncServiceBusReceiver | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.state: RouteState | None = None

    @property
    def paused(self) -> bool:
        """Whether the route is paused now."""
        return not self._resumed.is_set()

    async def wait_resumed(self) -> None:
        """Return at once when running; otherwise when a resume command arrives."""
        await self._resumed.wait()

    async def poll_once(self) -> None:
        """Read the commands that arrived since the last poll and update the state."""
        try:
            with bus_errors():
                if self._receiver is None:
                    self._receiver = self._client.get_queue_receiver(self._queue, prefetch_count=0)
                while page := await self._receiver.peek_messages(
                    max_message_count=_PEEK_PAGE, sequence_number=self._next_sequence
                ):
                    self._next_sequence = (page[-1].sequence_number or 0) + 1
                    state = fold_states(page).get(self._route)
                    if state is not None:
                        self._apply(state)
        except DualbusError:
            await self.aclose()  # the next poll starts on a fresh connection
            raise

    async def aclose(self) -> None:
        """Close the receiver kept between polls (the next poll opens another)."""
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            with contextlib.suppress(Exception):
                await receiver.close()

    async def run(self) -> None:
        """Poll until cancelled; a failing poll is logged and retried at the next interval."""
        try:
            while True:
                try:
                    await self.poll_once()
                except DualbusError as exc:
                    _log.warning(
                        "cannot read the control queue; keeping the last state", extra={"error": str(exc)}
                    )
                await asyncio.sleep(self._interval)
        finally:
            await asyncio.shield(self.aclose())

    def _apply(self, state: RouteState) -> None:
        if state.paused != self.paused:
            _log.info("route %s %s by %s", state.route, "paused" if state.paused else "resumed", state.by)
        self.state = state
        if state.paused:
            self._resumed.clear()
        else:
            self._resumed.set()
