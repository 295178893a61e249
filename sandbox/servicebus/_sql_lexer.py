"""The scanner for Service Bus SQL filter and action text: characters in, tokens with 1-based positions out.

The lexical rules follow https://learn.microsoft.com/azure/service-bus-messaging/service-bus-messaging-sql-filter
(regular, [delimited] and "quoted" identifiers, '' inside string constants, Int64 integers, doubles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from dualbus.sandbox.errors import SandboxConfigError

__all__ = ["KEYWORDS", "Token", "TokenKind", "tokenize"]

KEYWORDS = frozenset(
    {"AND", "OR", "NOT", "IN", "LIKE", "ESCAPE", "IS", "NULL", "EXISTS", "TRUE", "FALSE", "SET", "REMOVE"}
)
# Longest first, so that "<=" is not read as "<" then "=".
_SYMBOLS = ("<>", "!=", "<=", ">=", "=", "<", ">", "(", ")", ",", ".", ";", "+", "-", "*", "/", "%")
_NUMBER = re.compile(r"(?:\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_INT64 = (-(2**63), 2**63 - 1)


class TokenKind(Enum):
    """What a token is."""

    KEYWORD = "keyword"
    NAME = "name"
    DELIMITED = "delimited identifier"
    STRING = "string"
    NUMBER = "number"
    SYMBOL = "symbol"
    PARAMETER = "parameter"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text as written, its decoded value and where it starts (1-based)."""

    kind: TokenKind
    text: str
    value: object
    position: int

    def is_keyword(self, *words: str) -> bool:
        """Whether this token is one of the given keywords."""
        return self.kind is TokenKind.KEYWORD and self.value in words

    def is_symbol(self, *symbols: str) -> bool:
        """Whether this token is one of the given symbols."""
        return self.kind is TokenKind.SYMBOL and self.value in symbols


def tokenize(source: str) -> list[Token]:
    """Split SQL filter or action text into tokens, ending with an END token; raise SandboxConfigError."""
    tokens: list[Token] = []
    index = 0
    while index < len(source):
        if source[index].isspace():
            index += 1
            continue
        token, index = _scan(source, index)
        tokens.append(token)
    tokens.append(Token(TokenKind.END, "end of text", None, len(source) + 1))
    return tokens


def _scan(source: str, index: int) -> tuple[Token, int]:
    char = source[index]
    if char.isalpha():
        return _word(source, index)
    if "0" <= char <= "9" or (char == "." and "0" <= source[index + 1 : index + 2] <= "9"):
        return _number(source, index)
    if char in "'\"":
        return _quoted(source, index, TokenKind.STRING if char == "'" else TokenKind.DELIMITED)
    if char == "[":
        return _bracketed(source, index)
    if char == "@":
        end, _ = _word_end(source, index + 1)
        return Token(TokenKind.PARAMETER, source[index:end], source[index:end], index + 1), end
    for symbol in _SYMBOLS:
        if source.startswith(symbol, index):
            return Token(TokenKind.SYMBOL, symbol, symbol, index + 1), index + len(symbol)
    raise SandboxConfigError(f"unexpected character {char!r} at position {index + 1}")


def _word_end(source: str, index: int) -> tuple[int, str]:
    end = index
    while end < len(source) and (source[end].isalnum() or source[end] == "_"):
        end += 1
    return end, source[index:end]


def _word(source: str, index: int) -> tuple[Token, int]:
    end, word = _word_end(source, index)
    if word.upper() in KEYWORDS:
        return Token(TokenKind.KEYWORD, word.upper(), word.upper(), index + 1), end
    return Token(TokenKind.NAME, word, word, index + 1), end


def _number(source: str, index: int) -> tuple[Token, int]:
    match = _NUMBER.match(source, index)
    if match is None:  # pragma: no cover - _scan only calls this in front of a digit
        raise SandboxConfigError(f"malformed number at position {index + 1}")
    text = match.group(0)
    if match.group(1) is None and match.group(2) is None and not text.startswith("."):
        value: int | float = int(text)
        if not _INT64[0] <= value <= _INT64[1]:
            raise SandboxConfigError(f"integer {text} at position {index + 1} is outside the Int64 range")
    else:
        value = float(text)
    return Token(TokenKind.NUMBER, text, value, index + 1), match.end()


def _quoted(source: str, index: int, kind: TokenKind) -> tuple[Token, int]:
    """A 'string' or "quoted identifier"; the quote character doubled stands for itself."""
    quote = source[index]
    parts: list[str] = []
    cursor = index + 1
    while True:
        close = source.find(quote, cursor)
        if close < 0:
            raise SandboxConfigError(f"unterminated {kind.value} starting at position {index + 1}")
        parts.append(source[cursor:close])
        if source.startswith(quote * 2, close):
            parts.append(quote)
            cursor = close + 2
            continue
        return Token(kind, source[index : close + 1], "".join(parts), index + 1), close + 1


def _bracketed(source: str, index: int) -> tuple[Token, int]:
    """A [delimited identifier]; "]]" stands for one "]"."""
    parts: list[str] = []
    cursor = index + 1
    while True:
        close = source.find("]", cursor)
        if close < 0:
            raise SandboxConfigError(f"unterminated [identifier] starting at position {index + 1}")
        parts.append(source[cursor:close])
        if source.startswith("]]", close):
            parts.append("]")
            cursor = close + 2
            continue
        name = "".join(parts)
        if not name:
            raise SandboxConfigError(f"empty [identifier] at position {index + 1}")
        return Token(TokenKind.DELIMITED, source[index : close + 1], name, index + 1), close + 1
