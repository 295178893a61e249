"""Property-based checks of the SQL filter semantics against independent oracles."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from dualbus.sandbox.servicebus.filters import compile_sql_filter

_ALPHABET = "ab%_!"


def like_oracle(value: str, pattern: str, escape: str | None) -> bool:
    """SQL LIKE by direct recursion over pattern and value, sharing no code with the implementation."""
    tokens: list[tuple[str, str]] = []  # ("lit", c) | ("one", "") | ("any", "")
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == escape and index + 1 < len(pattern):
            tokens.append(("lit", pattern[index + 1]))
            index += 2
            continue
        tokens.append(("any", "") if char == "%" else ("one", "") if char == "_" else ("lit", char))
        index += 1

    @cache
    def walk(t: int, v: int) -> bool:
        if t == len(tokens):
            return v == len(value)
        kind, char = tokens[t]
        if kind == "any":
            return walk(t + 1, v) or (v < len(value) and walk(t, v + 1))
        if v == len(value):
            return False
        return (kind == "one" or value[v] == char) and walk(t + 1, v + 1)

    return walk(0, 0)


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@settings(max_examples=300, deadline=None)
@given(value=st.text(_ALPHABET, max_size=8), pattern=st.text(_ALPHABET, max_size=6))
def test_like_agrees_with_a_direct_matcher(value, pattern):
    """LIKE without ESCAPE matches exactly when a straightforward recursive matcher says so."""
    match = compile_sql_filter(f"v LIKE {sql_string(pattern)}")
    assert match({}, {"v": value}) is like_oracle(value, pattern, None)


@settings(max_examples=300, deadline=None)
@given(value=st.text(_ALPHABET, max_size=8), pattern=st.text(_ALPHABET, max_size=6))
def test_like_with_escape_agrees_with_a_direct_matcher(value, pattern):
    """LIKE ... ESCAPE '!' agrees with the matcher whenever the pattern does not end in a lone escape."""
    trailing = len(pattern) - len(pattern.rstrip("!"))
    if trailing % 2:
        pattern += "!"  # keep the pattern well formed: an escape must be followed by something
    match = compile_sql_filter(f"v LIKE {sql_string(pattern)} ESCAPE '!'")
    assert match({}, {"v": value}) is like_oracle(value, pattern, "!")


# Each atom is true, false or unknown depending on the message; "missing" makes it unknown.
_ATOMS = ("a = 1", "b = 1", "c IN (1, 2)", "a > b")
_values = st.sampled_from([0, 1, 2, None, "missing"])


def _message(a, b, c):
    return {name: value for name, value in (("a", a), ("b", b), ("c", c)) if value != "missing"}


@st.composite
def predicates(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(_ATOMS))
    kind = draw(st.sampled_from(["AND", "OR", "NOT"]))
    left = draw(predicates(depth=depth - 1))
    if kind == "NOT":
        return f"NOT ({left})"
    return f"({left}) {kind} ({draw(predicates(depth=depth - 1))})"


@settings(max_examples=200, deadline=None)
@given(p=predicates(), q=predicates(), a=_values, b=_values, c=_values)
def test_de_morgan_holds_under_three_valued_logic(p, q, a, b, c):
    """NOT (p AND q) matches exactly when (NOT p) OR (NOT q) does, for any mix of true, false and unknown."""
    user = _message(a, b, c)
    left = compile_sql_filter(f"NOT (({p}) AND ({q}))")({}, user)
    right = compile_sql_filter(f"(NOT ({p})) OR (NOT ({q}))")({}, user)
    assert left is right


@settings(max_examples=200, deadline=None)
@given(p=predicates(), a=_values, b=_values, c=_values)
def test_a_filter_and_its_negation_never_both_match(p, a, b, c):
    """A message matches at most one of p and NOT p (both fail when p is unknown)."""
    user = _message(a, b, c)
    assert not (compile_sql_filter(p)({}, user) and compile_sql_filter(f"NOT ({p})")({}, user))


@settings(max_examples=200, deadline=None)
@given(a=_values, b=_values)
def test_a_comparison_is_unknown_exactly_when_an_operand_is_missing_or_null(a, b):
    """Both a = b and NOT a = b fail exactly when one side is missing or NULL."""
    user = _message(a, b, None)
    unknown = a in (None, "missing") or b in (None, "missing")
    either = compile_sql_filter("a = b")({}, user) or compile_sql_filter("NOT a = b")({}, user)
    assert either is not unknown
