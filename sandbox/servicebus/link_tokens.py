"""An entity link lasts as long as a token covers it: the token's expiry drops it unless a newer one came.

"When a token expires, Service Bus promptly drops all links on the connection to the respective entity. To
prevent problem occurring, the client can replace the token for the node with a new one at any time through
the virtual *$cbs* management node with the same *put-token* gesture" (MicrosoftDocs/azure-docs
articles/service-bus-messaging/service-bus-amqp-protocol-guide.md, commit
9920c3abe95abd303c1be676c7837da318196b83). So a link keeps the node and right it was authorized for and the
expiry of the latest token covering it (a SAS token's ``se``, an Entra ID token's ``exp``). When the broker's
clock reaches that expiry, the connection's tokens are read again: one put since that covers the node (the
SDKs renew theirs for the same audience a while before it runs out) carries the link on to its own expiry;
without one the link is detached.

The detach is Azure's, as clients have logged it: condition ``amqp:link:detach-forced``, "The link '...' is
force detached. Code: RenewToken. Details: Unauthorized access. 'Listen' claim(s) are required to perform
this operation. Resource: '...'" (https://github.com/Azure/azure-sdk-for-python/issues/23487,
https://github.com/dapr/components-contrib/issues/809). The Python SDK raises that as
ServiceBusConnectionError and reconnects; putting the expired token again is then refused, which it raises
as ServiceBusAuthenticationError. Until the timers reach the expiry, a transfer or settlement on the link is
refused with ``amqp:unauthorized-access`` (ServiceBusAuthorizationError).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from proton import Link

from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.connections import ConnectionState, state_of
from dualbus.sandbox.servicebus.errors import BrokerError
from dualbus.sandbox.servicebus.links import LinkConsumer, close_link, refuse_receiver
from dualbus.sandbox.servicebus.sas import LISTEN, Grant, unauthorized

__all__ = ["UNAUTHORIZED", "LinkTokens", "check_token"]

UNAUTHORIZED = "amqp:unauthorized-access"
_DETACH_FORCED = "amqp:link:detach-forced"


@dataclass(slots=True)
class _Authorization:
    """What a link was let in for: ``right`` (None: any) on ``path``, until ``until_ms`` (broker's clock)."""

    path: str
    right: str | None
    until_ms: int


class LinkTokens:
    """Lets entity links in by their connection's tokens and drops them when the last covering one expires."""

    def __init__(self, bus: ServiceBus) -> None:
        self._bus = bus

    def authorize(self, link: Link, path: str, right: str | None) -> None:
        """Let ``link`` in to ``path`` if a token of its connection covers it with ``right`` (None: any) and
        watch that token's expiry; else raise BrokerError."""
        state = state_of(link)
        covering = _covering(state.grants, path, self._bus.clock()) if state is not None else []
        if state is None or not covering:
            raise BrokerError(
                UNAUTHORIZED, f"Unauthorized access to '{path}': put a token on $cbs first.", status=401
            )
        until_ms = _latest_expiry_ms(covering, right)
        if until_ms is None:  # covered, but by no token holding the right
            raise BrokerError(UNAUTHORIZED, unauthorized(right or LISTEN, path), status=401)
        link.sb_authorization = _Authorization(path, right, until_ms)
        state.authorized.add(link)
        self._set_alarm(state, until_ms)

    def forget(self, link: Link) -> None:
        """Stop watching a link that closed."""
        state = state_of(link)
        if state is not None:
            state.authorized.discard(link)

    def _set_alarm(self, state: ConnectionState, due_ms: int) -> None:
        # One alarm per expiry and connection: a client opening a link per message reuses its token's.
        if due_ms in state.token_alarms or state.lost:
            return
        state.token_alarms[due_ms] = self._bus.alarms.at(due_ms, lambda now: self._expire(state, due_ms, now))

    def _expire(self, state: ConnectionState, due_ms: int, now: int) -> None:
        """Carry each of the connection's links whose token expired on to a newer token's, or drop it."""
        state.token_alarms.pop(due_ms, None)
        # Expired tokens let nothing in again: dropped, they no longer lengthen every later look.
        state.grants = [grant for grant in state.grants if _ms(grant.expiry) > now]
        for link in list(state.authorized):
            authorization: _Authorization = link.sb_authorization
            if authorization.until_ms > now:
                continue
            renewed = _renewed_until_ms(state.grants, authorization, now)
            if renewed is None:
                self._drop(state, link, authorization)
            else:
                authorization.until_ms = renewed
                self._set_alarm(state, renewed)

    def _drop(self, state: ConnectionState, link: Link, authorization: _Authorization) -> None:
        state.authorized.discard(link)
        if link.state & Link.LOCAL_CLOSED:
            return  # already ended (refused, or its session wait timed out): the client's detach is due
        consumer: LinkConsumer | None = getattr(link, "sb_consumer", None)
        if consumer is not None:
            state.link_closed(self._bus, consumer)  # as a client's detach: sessions freed, locks handed over
        description = _force_detached(link, authorization)
        if consumer is not None and not link.state & Link.LOCAL_ACTIVE:
            refuse_receiver(link, _DETACH_FORCED, description)  # still waiting for a session
        else:
            close_link(link, _DETACH_FORCED, description)


def check_token(link: Link, now_ms: int) -> None:
    """Raise BrokerError for a transfer or settlement on ``link`` once its token expired with none newer."""
    authorization: _Authorization | None = getattr(link, "sb_authorization", None)
    if authorization is None or now_ms < authorization.until_ms:
        return
    state = state_of(link)
    if state is not None and _renewed_until_ms(state.grants, authorization, now_ms) is not None:
        return  # renewed: the alarm due now carries the link on
    right = authorization.right or LISTEN
    raise BrokerError(UNAUTHORIZED, unauthorized(right, authorization.path), status=401)


def _renewed_until_ms(grants: Iterable[Grant], authorization: _Authorization, now_ms: int) -> int | None:
    """The expiry of the latest token covering the link's node now, if one is current; else None."""
    covering = _covering(grants, authorization.path, now_ms / 1000)
    until_ms = _latest_expiry_ms(covering, authorization.right)
    # Later than now, or the alarm would be set for a time already past and ring again in the same turn.
    return until_ms if until_ms is not None and until_ms > now_ms else None


def _covering(grants: Iterable[Grant], path: str, now_s: float) -> list[Grant]:
    """The ``grants`` that cover ``path`` at ``now_s`` (seconds on the broker's clock)."""
    return [grant for grant in grants if grant.covers(path, now_s)]


def _latest_expiry_ms(grants: Iterable[Grant], right: str | None) -> int | None:
    """The latest expiry of the ``grants`` holding ``right`` (any of them for None); None if none does."""
    return max((_ms(grant.expiry) for grant in grants if right is None or grant.allows(right)), default=None)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _force_detached(link: Link, authorization: _Authorization) -> str:
    """Azure's words for a link whose token expired (module notes); a ``$management`` link needs Listen."""
    details = unauthorized(authorization.right or LISTEN, authorization.path)
    return f"The link '{link.name}' is force detached. Code: RenewToken. Details: {details}"
