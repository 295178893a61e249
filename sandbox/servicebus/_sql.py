"""A recursive-descent parser for the supported subset of Service Bus SQL filters (actions extend it).

Grammar (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-messaging-sql-filter), keywords
case-insensitive, precedence from loosest: OR, AND, NOT, then the conditions::

    filter     := or END
    or         := and (OR and)*
    and        := not (AND not)*
    not        := NOT not | condition
    condition  := "(" or ")" | EXISTS "(" property ")" | TRUE | FALSE
                | operand ( cmp operand | IS [NOT] NULL | [NOT] IN "(" operand ("," operand)* ")"
                          | [NOT] LIKE string [ESCAPE string] )
    operand    := string | [+|-] number | TRUE | FALSE | NULL | property | "(" operand ")"
    property   := [sys. | user.] (name | [delimited] | "quoted")

Arithmetic, functions (newid(), property(), p()) and @parameters are outside the subset: each is refused
with its name and position. Parsing yields closures, so a message is matched without walking a tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus import _sql_eval as sem
from dualbus.sandbox.servicebus._sql_lexer import Token, TokenKind, tokenize

__all__ = ["Operand", "Parser", "describe", "parse_filter"]

_COMPARISONS = ("=", "<>", "!=", "<", "<=", ">", ">=")
_ARITHMETIC = ("+", "-", "*", "/", "%")


def parse_filter(source: str) -> sem.Predicate:
    """Compile a SQL filter into a three-valued predicate; raise SandboxConfigError naming what is wrong."""
    return Parser(source).filter()


@dataclass(frozen=True, slots=True)
class Operand:
    """A constant or a property, with what error messages and actions need to know about it."""

    get: sem.Getter
    text: str
    position: int
    is_constant: bool = False
    value: object = None
    scope: str = ""
    name: str = ""


def _constant(value: object, token: Token) -> Operand:
    def get(_system: sem.Properties, _user: sem.Properties) -> object:
        return value

    return Operand(get, token.text, token.position, is_constant=True, value=value)


def _system_property(name: str, token: Token) -> Operand:
    def get(system: sem.Properties, _user: sem.Properties) -> object:
        return system.get(name)

    return Operand(get, f"sys.{name}", token.position, scope="sys", name=name)


def _user_property(name: str, token: Token) -> Operand:
    def get(_system: sem.Properties, user: sem.Properties) -> object:
        return user[name] if name in user else sem.lookup_user(user, name)[1]

    return Operand(get, name, token.position, scope="user", name=name)


def _presence(operand: Operand) -> sem.Predicate:
    """EXISTS: a user property exists when its key does; a system property when it has a value."""
    name, is_system = operand.name, operand.scope == "sys"

    def evaluate(system: sem.Properties, user: sem.Properties) -> bool | None:
        return system.get(name) is not None if is_system else sem.user_key(user, name) is not None

    return evaluate


def _always(result: bool | None) -> sem.Predicate:
    def evaluate(_system: sem.Properties, _user: sem.Properties) -> bool | None:
        return result

    return evaluate


class Parser:
    """One pass over the tokens of one filter expression; the action parser extends it."""

    def __init__(self, source: str) -> None:
        self._tokens = tokenize(source)
        self._index = 0

    # -- token handling ------------------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _next(self) -> Token:
        token = self._peek()
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _keyword(self, *words: str) -> bool:
        if self._peek().is_keyword(*words):
            self._next()
            return True
        return False

    def _expect(self, symbol: str, where: str) -> None:
        token = self._next()
        if not token.is_symbol(symbol):
            self._fail(token, f"expected {symbol!r} {where}, found {describe(token)}")

    def _fail(self, token: Token, message: str) -> NoReturn:
        raise SandboxConfigError(f"{message} at position {token.position}")

    def end(self) -> None:
        """Refuse anything left after a complete expression."""
        token = self._peek()
        if token.kind is not TokenKind.END:
            self._refuse_unsupported(token)
            self._fail(token, f"unexpected {describe(token)}")

    def _refuse_unsupported(self, token: Token) -> None:
        if token.kind is TokenKind.SYMBOL and token.value in _ARITHMETIC:
            self._fail(token, f"unsupported arithmetic operator {token.text!r}")
        if token.kind is TokenKind.PARAMETER:
            self._fail(token, f"unsupported parameter {token.text}")

    # -- predicates ----------------------------------------------------------------------------------

    def filter(self) -> sem.Predicate:
        predicate = self._or()
        self.end()
        return predicate

    def _or(self) -> sem.Predicate:
        predicate = self._and()
        while self._keyword("OR"):
            predicate = sem.any_of(predicate, self._and())
        return predicate

    def _and(self) -> sem.Predicate:
        predicate = self._not()
        while self._keyword("AND"):
            predicate = sem.all_of(predicate, self._not())
        return predicate

    def _not(self) -> sem.Predicate:
        if self._keyword("NOT"):
            return sem.negate(self._not())
        return self._condition()

    def _condition(self) -> sem.Predicate:
        token = self._peek()
        if token.is_symbol("("):
            return self._group()
        if token.is_keyword("EXISTS"):
            self._next()
            self._expect("(", "after EXISTS")
            operand = self._property(self._next())
            self._expect(")", "after the EXISTS property")
            return _presence(operand)
        if token.is_keyword("TRUE", "FALSE") and not self._peek(1).is_symbol(*_COMPARISONS):
            self._next()
            return _always(token.value == "TRUE")
        return self._test(self._operand())

    def _group(self) -> sem.Predicate:
        """A parenthesised condition, or else a parenthesised value such as ``(a) = 1``."""
        start = self._index
        try:
            self._next()
            inner = self._or()
            self._expect(")", "to close the parenthesis")
        except SandboxConfigError as as_condition:
            self._index = start
            try:
                return self._test(self._operand())
            except SandboxConfigError:
                raise as_condition from None  # the condition reading explains the mistake better
        return inner

    def _test(self, left: Operand) -> sem.Predicate:
        token = self._peek()
        if self._keyword("IS"):
            return self._is_null(left, token)
        if self._keyword("NOT"):
            if not self._peek().is_keyword("IN", "LIKE"):
                self._fail(self._peek(), f"expected IN or LIKE after NOT, found {describe(self._peek())}")
            return sem.negate(self._test(left))
        if self._keyword("IN"):
            return self._in(left)
        if self._keyword("LIKE"):
            return self._like(left)
        if token.is_symbol(*_COMPARISONS):
            self._next()
            return self._comparison(str(token.value), left, self._operand())
        self._refuse_unsupported(token)
        return self._fail(
            token, f"expected a comparison, IS, IN or LIKE after {left.text}, found {describe(token)}"
        )

    def _is_null(self, left: Operand, token: Token) -> sem.Predicate:
        negated = self._keyword("NOT")
        if not self._keyword("NULL"):
            self._fail(self._peek(), f"expected NULL after IS, found {describe(self._peek())}")
        if left.is_constant:
            self._fail(token, f"IS NULL needs a property, not the constant {left.text}")
        get = left.get

        def evaluate(system: sem.Properties, user: sem.Properties) -> bool | None:
            return (get(system, user) is None) is not negated

        return evaluate

    def _comparison(self, symbol: str, left: Operand, right: Operand) -> sem.Predicate:
        if left.is_constant and right.is_constant:  # e.g. the match-all 1=1: decide once
            return _always(sem.compare(symbol, left.value, right.value))
        get_left, get_right = left.get, right.get

        def evaluate(system: sem.Properties, user: sem.Properties) -> bool | None:
            return sem.compare(symbol, get_left(system, user), get_right(system, user))

        return evaluate

    def _in(self, left: Operand) -> sem.Predicate:
        self._expect("(", "after IN")
        items = [self._operand()]
        while self._peek().is_symbol(","):
            self._next()
            items.append(self._operand())
        self._expect(")", "to close the IN list")
        getters = [item.get for item in items]
        get = left.get

        def evaluate(system: sem.Properties, user: sem.Properties) -> bool | None:
            value = get(system, user)
            if value is None:
                return None
            unknown = False
            for item in getters:
                equal = sem.compare("=", value, item(system, user))
                if equal:
                    return True
                unknown = unknown or equal is None
            return None if unknown else False

        return evaluate

    def _like(self, left: Operand) -> sem.Predicate:
        pattern = self._next()
        if pattern.kind is not TokenKind.STRING:
            self._fail(pattern, f"unsupported LIKE pattern {describe(pattern)}: only a string constant")
        escape: str | None = None
        if self._keyword("ESCAPE"):
            token = self._next()
            if token.kind is not TokenKind.STRING or len(str(token.value)) != 1:
                self._fail(token, f"ESCAPE needs a one-character string, found {describe(token)}")
            escape = str(token.value)
        regex = sem.like_regex(str(pattern.value), escape, pattern.position)
        get = left.get

        def evaluate(system: sem.Properties, user: sem.Properties) -> bool | None:
            value = get(system, user)
            return regex.fullmatch(value) is not None if isinstance(value, str) else None

        return evaluate

    # -- operands ------------------------------------------------------------------------------------

    def _operand(self) -> Operand:
        operand = self._value(self._next())
        self._refuse_unsupported(self._peek())
        return operand

    def _value(self, token: Token) -> Operand:
        if token.kind in (TokenKind.STRING, TokenKind.NUMBER):
            return _constant(token.value, token)
        if token.is_keyword("TRUE", "FALSE", "NULL"):
            return _constant({"TRUE": True, "FALSE": False}.get(str(token.value)), token)
        if token.is_symbol("+", "-") and self._peek().kind is TokenKind.NUMBER:
            number = self._next().value
            negative = token.value == "-" and isinstance(number, int | float)
            return _constant(-number if negative else number, token)  # type: ignore[operator]
        if token.is_symbol("("):
            inner = self._operand()
            self._expect(")", f"to close the parenthesis opened at position {token.position}")
            return inner
        if token.kind in (TokenKind.NAME, TokenKind.DELIMITED):
            return self._property(token)
        self._refuse_unsupported(token)
        return self._fail(token, f"expected a value or a property, found {describe(token)}")

    def _property(self, token: Token) -> Operand:
        if token.kind is TokenKind.NAME and self._peek().is_symbol("("):
            self._fail(token, f"unsupported function {token.text}()")
        scope = ""
        is_scope = token.kind is TokenKind.NAME and str(token.value).lower() in ("sys", "user")
        if is_scope and self._peek().is_symbol("."):
            self._next()
            scope, token = str(token.value).lower(), self._next()
        if token.kind not in (TokenKind.NAME, TokenKind.DELIMITED):
            if token.kind is TokenKind.KEYWORD:
                self._fail(token, f"{token.text} is a reserved keyword; write [{token.text}] for a property")
            self._fail(token, f"expected a property name, found {describe(token)}")
        if scope == "sys":
            return _system_property(sem.system_name(str(token.value), token.position), token)
        return _user_property(str(token.value), token)


def describe(token: Token) -> str:
    return "the end of the text" if token.kind is TokenKind.END else f"{token.kind.value} {token.text!r}"
