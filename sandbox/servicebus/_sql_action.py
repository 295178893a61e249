"""Service Bus SQL rule actions: ``SET`` and ``REMOVE`` statements that edit a matched copy's properties.

Grammar (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-messaging-sql-rule-action),
limited to what the filter subset can evaluate::

    action     := statement ([";"] statement)* [";"]
    statement  := SET property "=" operand | REMOVE property

Broker-set system properties (sequence number, delivery count, ...) cannot be assigned, and only user
properties can be removed; arithmetic and functions are refused as they are in filters.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TypeAlias

from dualbus.sandbox.servicebus import _sql_eval as sem
from dualbus.sandbox.servicebus._sql import Operand, Parser, describe

__all__ = ["Action", "parse_action"]

Action: TypeAlias = Callable[[MutableMapping[str, object], MutableMapping[str, object]], None]


def parse_action(source: str) -> Action:
    """Compile a rule action into a function editing (system, user) properties; raise SandboxConfigError."""
    return _ActionParser(source).action()


class _ActionParser(Parser):
    """The filter parser's operands and properties, read as statements."""

    def action(self) -> Action:
        statements = [self._statement()]
        while True:
            if self._peek().is_symbol(";"):  # the separator is optional
                self._next()
            if not self._peek().is_keyword("SET", "REMOVE"):
                break
            statements.append(self._statement())
        self.end()

        def run(system: MutableMapping[str, object], user: MutableMapping[str, object]) -> None:
            for statement in statements:
                statement(system, user)

        return run

    def _statement(self) -> Action:
        token = self._next()
        if not token.is_keyword("SET", "REMOVE"):
            self._fail(token, f"expected SET or REMOVE, found {describe(token)}")
        target = self._property(self._next())
        if target.scope == "sys" and (token.value == "REMOVE" or target.name in sem.READ_ONLY_SYSTEM):
            self._fail(token, f"unsupported {token.value} of the system property {target.text}")
        if token.value == "REMOVE":
            return _remover(target.name)
        self._expect("=", f"after SET {target.text}")
        return _setter(target, self._operand().get)


def _remover(name: str) -> Action:
    def run(_system: MutableMapping[str, object], user: MutableMapping[str, object]) -> None:
        key = sem.user_key(user, name)
        if key is not None:
            del user[key]

    return run


def _setter(target: Operand, get: sem.Getter) -> Action:
    name, is_system = target.name, target.scope == "sys"

    def run(system: MutableMapping[str, object], user: MutableMapping[str, object]) -> None:
        value = get(system, user)
        if is_system:
            system[name] = value
        else:
            sem.set_user(user, name, value)

    return run
