"""The ``$management`` node of each entity: the request-response operations the SDK calls.

Operation names, request keys and reply shapes are the SDK's (``azure/servicebus/_common/constants.py``
and ``mgmt_handlers.py``); replies carry ``statusCode``/``statusDescription`` and, on failure,
``errorCondition``, which the SDK maps to its exception types.
See https://learn.microsoft.com/azure/service-bus-messaging/service-bus-amqp-request-response
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any

from dualbus.sandbox.servicebus.bus import ServiceBus
from dualbus.sandbox.servicebus.codec import Described, Symbol, Timestamp
from dualbus.sandbox.servicebus.connections import ConnectionState
from dualbus.sandbox.servicebus.entity import Entity
from dualbus.sandbox.servicebus.errors import AmqpDecodeError, BrokerError
from dualbus.sandbox.servicebus.lookup import peek, receive_deferred
from dualbus.sandbox.servicebus.message import parse_message
from dualbus.sandbox.servicebus.settlement import ABANDON, COMPLETE, DEAD_LETTER, DEFER

if TYPE_CHECKING:
    from dualbus.sandbox.servicebus.catalog import Catalog, Definition

__all__ = ["Management", "Reply"]

Reply = tuple[int, Any]
_PREFIX = "com.microsoft:"
_DISPOSITIONS = {"completed": COMPLETE, "abandoned": ABANDON, "suspended": DEAD_LETTER, "defered": DEFER}
# Rule descriptions on the wire: described lists under Service Bus's own codes, as the JavaScript SDK reads
# them (@azure/service-bus src/util/constants.ts descriptorCodes, managementClient.ts getRules/addRule).
_RULE_DESCRIPTION = 0x0000013700000004
_EMPTY_ACTION = 0x0000013700000005
_SQL_ACTION = 0x0000013700000006
_SQL_FILTER = 0x0000001370000006
_TRUE_FILTER = 0x0000001370000007
_FALSE_FILTER = 0x0000001370000008
_CORRELATION_FILTER = 0x0000001370000009
# The correlation-filter map keys of add-rule and their Config.json names, in the described list's order.
_CORRELATION_KEYS = (
    ("correlation-id", "CorrelationId"),
    ("message-id", "MessageId"),
    ("to", "To"),
    ("reply-to", "ReplyTo"),
    ("label", "Label"),
    ("session-id", "SessionId"),
    ("reply-to-session-id", "ReplyToSessionId"),
    ("content-type", "ContentType"),
)


class Management:
    """Runs one management request against an entity and returns (status code, reply body)."""

    def __init__(self, bus: ServiceBus) -> None:
        self.bus = bus
        self.catalog: Catalog | None = None  # set by the server: rule operations change its definitions
        self._holder: object | None = None  # of the request being executed (one at a time: one loop)
        self._ops: dict[str, Callable[[Entity, Mapping[str, Any]], Reply]] = {
            "renew-lock": self._renew_lock,
            "update-disposition": self._update_disposition,
            "receive-by-sequence-number": self._receive_deferred,
            "peek-message": self._peek,
            "schedule-message": self._schedule,
            "cancel-scheduled-message": self._cancel,
            "renew-session-lock": self._renew_session,
            "get-session-state": self._get_state,
            "set-session-state": self._set_state,
            "get-message-sessions": self._sessions,
            "add-rule": self._add_rule,
            "remove-rule": self._remove_rule,
            "enumerate-rules": self._enumerate_rules,
        }

    def execute(
        self, entity: Entity, operation: str, body: Mapping[str, Any], *, holder: object | None = None
    ) -> Reply:
        """Run ``operation`` (locks it takes are ``holder``'s); BrokerError for Service Bus failures,
        amqp:not-implemented for the rest."""
        self._holder = holder
        handler = self._ops.get(operation.removeprefix(_PREFIX))
        if handler is None:
            raise BrokerError(
                "amqp:not-implemented", f"The operation {operation!r} is not supported.", status=501
            )
        try:
            return handler(entity, body)
        except (KeyError, TypeError, ValueError, AmqpDecodeError) as exc:
            if isinstance(exc, BrokerError):
                raise
            raise BrokerError(
                "com.microsoft:argument-error", f"Malformed {operation} request: {exc}"
            ) from exc

    def _renew_lock(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        expirations = [Timestamp(self.bus.settlement.renew(entity, _token(t))) for t in body["lock-tokens"]]
        return 200, {"expirations": expirations}

    def _update_disposition(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        outcome = _DISPOSITIONS[str(body["disposition-status"])]
        for raw in body["lock-tokens"]:
            self.bus.settlement.settle(
                entity,
                _token(raw),
                outcome,
                reason=_text(body.get("deadletter-reason")),
                description=_text(body.get("deadletter-description")),
            )
        return 200, None

    def _receive_deferred(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        peek_lock = int(body.get("receiver-settle-mode", 1)) == 1
        found = receive_deferred(
            self.bus,
            entity,
            [int(n) for n in body["sequence-numbers"]],
            peek_lock=peek_lock,
            session_id=_text(body.get("session-id")),
            holder=self._holder,
        )
        messages = []
        for payload, token in found:
            item: dict[str, Any] = {"message": payload}
            if token is not None:
                item["lock-token"] = uuid.UUID(bytes_le=token)
            messages.append(item)
        return 200, {"messages": messages}

    def _peek(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        payloads = peek(
            self.bus,
            entity,
            int(body.get("from-sequence-number", 0)),
            int(body.get("message-count", 1)),
            _text(body.get("session-id")),
        )
        if not payloads:
            return 204, None
        return 200, {"messages": [{"message": p} for p in payloads]}

    def _schedule(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        envs = [parse_message(bytes(item["message"])) for item in body["messages"]]
        return 200, {"sequence-numbers": self.bus.intake.schedule(entity.path, envs)}

    def _cancel(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        self.bus.intake.cancel_scheduled(entity.path, [int(n) for n in body["sequence-numbers"]])
        return 200, None

    def _renew_session(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        until = self.bus.sessions.renew_session(entity, str(body["session-id"]), self._receivers())
        return 200, {"expiration": Timestamp(until)}

    def _get_state(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        state = self.bus.sessions.get_state(entity, str(body["session-id"]), self._receivers())
        return 200, {"session-state": state}

    def _set_state(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        raw = body.get("session-state")
        state = None if raw is None else bytes(raw)
        self.bus.sessions.set_state(entity, str(body["session-id"]), state, self._receivers())
        return 200, None

    def _receivers(self) -> Container[object]:
        """The receiving links of the requesting connection: a session operation needs one holding the
        session's lock (the SDK sends it on the session receiver's own connection)."""
        return self._holder.consumers if isinstance(self._holder, ConnectionState) else ()

    def _sessions(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        skip = int(body.get("skip", 0))
        top = int(body.get("top", 100))
        ids = sorted({m.env.session_id for m in entity.messages.values() if m.env.session_id is not None})
        page = ids[skip : skip + top]
        if not page:
            return 204, None
        return 200, {"skip": skip + len(page), "sessions-ids": page}

    # -- rules (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-amqp-request-response
    # "Rule operations") -----------------------------------------------------------------------

    def _subscription(self, entity: Entity) -> tuple[Catalog, str, str]:
        topic, marker, name = entity.path.rpartition("/subscriptions/")
        if self.catalog is None or not marker:
            raise BrokerError("amqp:not-allowed", "Rules belong to a topic subscription.", status=400)
        return self.catalog, topic, name

    def _add_rule(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        catalog, topic, sub = self._subscription(entity)
        name = str(body["rule-name"])
        catalog.put_rule(topic, sub, _rule_from_map(name, body["rule-description"]), update=False)
        return 200, None

    def _remove_rule(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        catalog, topic, sub = self._subscription(entity)
        catalog.delete_rule(topic, sub, str(body["rule-name"]))
        return 200, None

    def _enumerate_rules(self, entity: Entity, body: Mapping[str, Any]) -> Reply:
        catalog, topic, sub = self._subscription(entity)
        skip = int(body.get("skip", 0))
        top = int(body.get("top", 2**31 - 1))
        page = catalog.rules(topic, sub)[skip : skip + top]
        if not page:
            return 204, None
        return 200, {"rules": [{"rule-description": _rule_value(rule)} for rule in page]}


def _rule_from_map(name: str, description: Mapping[str, Any]) -> Definition:
    from dualbus.sandbox.servicebus.catalog import Definition  # noqa: PLC0415 - the catalog imports the broker

    sql = description.get("sql-filter")
    correlation = description.get("correlation-filter")
    properties: dict[str, Any]
    if sql is not None:
        properties = {"FilterType": "Sql", "SqlFilter": {"SqlExpression": str(sql["expression"])}}
    elif correlation is not None:
        node: dict[str, Any] = {
            key: str(correlation[wire])
            for wire, key in _CORRELATION_KEYS
            if correlation.get(wire) is not None
        }
        user = correlation.get("properties")
        if user:
            node["Properties"] = {str(k): _text(v) if isinstance(v, bytes) else v for k, v in user.items()}
        properties = {"FilterType": "Correlation", "CorrelationFilter": node}
    else:
        properties = {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "1=1"}}
    action = description.get("sql-rule-action")
    if isinstance(action, Mapping) and action.get("expression"):
        properties["Action"] = {"SqlExpression": str(action["expression"])}
    return Definition(name, properties)


def _rule_value(rule: Definition) -> Described:
    props = rule.properties
    if props["FilterType"] == "Sql":
        expression = props["SqlFilter"]["SqlExpression"]
        compact = expression.replace(" ", "")
        if compact == "1=1":
            rule_filter = Described(_TRUE_FILTER, [])
        elif compact == "1=0":
            rule_filter = Described(_FALSE_FILTER, [])
        else:
            rule_filter = Described(_SQL_FILTER, [expression, 20])
    else:
        node = props["CorrelationFilter"]
        fields: list[object] = [node.get(key) for _, key in _CORRELATION_KEYS]
        rule_filter = Described(_CORRELATION_FILTER, [*fields, dict(node.get("Properties", {}))])
    if "Action" in props:
        action = Described(_SQL_ACTION, [props["Action"]["SqlExpression"], 20])
    else:
        action = Described(_EMPTY_ACTION, [])
    return Described(_RULE_DESCRIPTION, [rule_filter, action, rule.name, Timestamp(rule.created_ms)])


def _token(raw: object) -> bytes:
    if isinstance(raw, uuid.UUID):
        return raw.bytes_le
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    return uuid.UUID(str(raw)).bytes_le


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def error_properties(error: BrokerError) -> dict[str, Any]:
    """The application properties of a failed management reply."""
    return {
        "statusCode": error.status,
        "statusDescription": error.description,
        "errorCondition": Symbol(error.condition),
    }
