"""The request-response nodes: ``$cbs`` (token checks) and each entity's ``$management``.

Requests arrive on a client's sending link; replies go out on the client's receiving link for the same
node in the same session, correlated by the request's message id. CBS replies use ``status-code``, management
replies ``statusCode`` (see https://learn.microsoft.com/azure/service-bus-messaging/service-bus-amqp-request-response).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from proton import Link

from dualbus.sandbox.errors import SandboxAuthError
from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.connections import state_of
from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.errors import AmqpDecodeError, BrokerError
from dualbus.sandbox.servicebus.links import entity_address, reply, text_keys
from dualbus.sandbox.servicebus.management import Management, error_properties
from dualbus.sandbox.servicebus.message import SentMessage, amqp_value, parse_message
from dualbus.sandbox.servicebus.sas import LISTEN, SAS_PREFIX, KeyRing, permits, unauthorized

__all__ = ["RequestNodes"]

_LOG = logging.getLogger(__name__)
_MGMT = "/$management"
# The put-token type of a Microsoft Entra ID token (a SAS token's is "servicebus.windows.net:sastoken").
_JWT = "jwt"
# The management operations that need Listen (every one the emulator has), from Service Bus's table
# "Rights required for Service Bus operations" (https://github.com/MicrosoftDocs/azure-docs/blob/df9ae8bdfd0eeb0c1bd4abd1fd9d1ed00839c203/articles/service-bus-messaging/service-bus-sas.md):
# settling, deferring, a session's state and peeking are Listen, as receiving is; so is scheduling (added
# to the table after a user found that scheduling needs Listen as well as the sender's Send,
# https://github.com/MicrosoftDocs/azure-docs/issues/5999); creating, deleting and listing a subscription's
# rules are Listen too (listing "Manage or Listen"; Manage includes Listen).
_LISTEN_OPERATIONS = frozenset(
    {
        "renew-lock",
        "update-disposition",
        "receive-by-sequence-number",
        "peek-message",
        "renew-session-lock",
        "get-session-state",
        "set-session-state",
        "get-message-sessions",
        "enumerate-rules",
        "schedule-message",
        "cancel-scheduled-message",
        "add-rule",
        "remove-rule",
    }
)
_OPERATION_PREFIX = "com.microsoft:"


class RequestNodes:
    """Answers CBS put-token and management requests."""

    def __init__(
        self,
        bus: ServiceBus,
        keys: KeyRing,
        after_commit: Callable[[Callable[[], None]], None],
    ) -> None:
        self.bus = bus
        self.keys = keys
        self.management = Management(bus)
        self.after_commit = after_commit

    @staticmethod
    def register_reply_link(link: Link) -> None:
        """Remember a client's receiving link on a request node, to answer on it later."""
        replies: dict[str, Link] | None = getattr(link.session, "sb_replies", None)
        if replies is None:
            replies = {}
            link.session.sb_replies = replies
        replies[entity_address(link.remote_source.address)] = link

    def on_cbs(self, link: Link, payload: bytes) -> None:
        """Check a put-token request and answer 202 (the grant is kept for the connection) or 401."""
        request = parse_message(payload)
        props = request.application_properties()
        audience = str(props.get("name", ""))
        token = str(amqp_value(request) or "")
        try:
            # By the token's shape: the async SDK puts an AzureSasCredential's SAS token with type "jwt".
            if props.get("type") == _JWT and not token.startswith(SAS_PREFIX):
                grant = self.keys.verify_entra(token)
            else:
                grant = self.keys.verify(token, audience)
        except SandboxAuthError as exc:
            _LOG.info("refused a token for %s: %s", audience, exc)
            status, text = 401, str(exc)
        else:
            state = state_of(link)
            if state is not None:  # always: a link exists only on an opened connection
                state.grants.append(grant)
            status, text = 202, "Accepted"
        self._reply(link, "$cbs", request, {"status-code": status, "status-description": text})

    def on_management(self, link: Link, payload: bytes) -> None:
        """Run a management operation; answer once what it changed is committed."""
        try:
            request = parse_message(payload)
        except AmqpDecodeError:
            _LOG.warning("dropped an undecodable management request on %s", link.name)
            return
        entity: Entity | None = getattr(link, "sb_entity", None)
        if entity is None:
            # The link was kept open to answer its requests with the refusal (unauthorized, not found):
            # the client raises that error instead of waiting for a reply that never comes.
            refusal: BrokerError = getattr(link, "sb_refusal", None) or BrokerError(
                "amqp:not-found", "The management node has no entity."
            )
            node = entity_address(link.remote_target.address)
            self.after_commit(lambda: self._reply(link, node, request, error_properties(refusal)))
            return
        operation = str(request.application_properties().get("operation", ""))
        body = amqp_value(request)
        try:
            self._check_right(link, entity, operation)
            # Messages a $management receive locks belong to the connection: they are freed when it goes.
            status, result = self.management.execute(
                entity, operation, text_keys(body), holder=state_of(link)
            )
            props: dict[str, Any] = {"statusCode": status, "statusDescription": "OK"}
        except BrokerError as exc:
            props, result = error_properties(exc), None
        node = entity.path + _MGMT
        self.after_commit(lambda: self._reply(link, node, request, props, result))

    def _check_right(self, link: Link, entity: Entity, operation: str) -> None:
        """BrokerError unless a grant of the connection covering the node holds the operation's right."""
        if operation.removeprefix(_OPERATION_PREFIX) not in _LISTEN_OPERATIONS:
            return  # an operation not named here is refused by Management as unsupported
        node = entity.path + _MGMT
        state = state_of(link)
        if not permits(state.grants if state is not None else [], node, LISTEN, self.bus.clock()):
            raise BrokerError("amqp:unauthorized-access", unauthorized(LISTEN, node), status=401)

    def _reply(
        self, link: Link, node: str, request: SentMessage, props: dict[str, Any], body: object = None
    ) -> None:
        replies: dict[str, Link] = getattr(link.session, "sb_replies", None) or {}
        target = replies.get(node)
        if target is None or not target.state & Link.LOCAL_ACTIVE:
            _LOG.warning("no reply link for %s; the response was dropped", node)
            return
        reply(target, request.properties[0], props, body)
