"""Subscription rule filters: the SQL subset, correlation filters, rule sets and rule actions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from dualbus.sandbox.errors import SandboxConfigError
from dualbus.sandbox.servicebus.config import CorrelationFilterConfig, RuleConfig, SqlFilterConfig
from dualbus.sandbox.servicebus.filters import (
    compile_action,
    compile_correlation_filter,
    compile_rule,
    compile_rules,
    compile_sql_filter,
)

SYSTEM = {
    "MessageId": "m-1",
    "CorrelationId": "c-1",
    "Label": "customer.updated",
    "To": "fo",
    "ContentType": "application/json",
    "SessionId": "s-7",
    "DeliveryCount": 1,
    "SequenceNumber": 42,
    "EnqueuedTimeUtc": datetime(2026, 1, 1, tzinfo=UTC),
}
USER = {
    "area": "customer",
    "company": "USMF",
    "priority": 5,
    "ratio": 0.5,
    "urgent": True,
    "nothing": None,
    "Property With Space": "x",
    "quote'd": "it's",
}


def matches(expression: str, system=None, user=None) -> bool:
    return compile_sql_filter(expression)(
        SYSTEM if system is None else system, USER if user is None else user
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("priority = 5", True),
        ("priority = 6", False),
        ("priority <> 6", True),
        ("priority <> 5", False),
        ("priority != 6", True),
        ("priority != 5", False),
        ("priority < 6", True),
        ("priority < 5", False),
        ("priority <= 5", True),
        ("priority <= 4", False),
        ("priority > 4", True),
        ("priority > 5", False),
        ("priority >= 5", True),
        ("priority >= 6", False),
        ("ratio = 0.5", True),
        ("priority = 5.0", True),
        ("ratio < 1", True),
        ("area = 'customer'", True),
        ("area = 'Customer'", False),
        ("urgent = TRUE", True),
        ("urgent = false", False),
        ("5 = priority", True),
    ],
)
def test_each_comparison_operator_matches_and_does_not_match(expression, expected):
    """Every comparison operator is true for a value that satisfies it and false for one that does not."""
    assert matches(expression) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "area = 5",
        "priority = '5'",
        "area < 'z'",
        "urgent > FALSE",
        "urgent = 1",
        "missing = 1",
        "nothing = NULL",
    ],
)
def test_a_comparison_without_a_common_type_or_with_null_is_unknown(expression):
    """Mismatched types, string ordering, NULL and missing properties are unknown: it and NOT it fail."""
    assert not matches(expression)
    assert not matches(f"NOT ({expression})")


def test_date_time_system_properties_compare_with_each_other():
    """EnqueuedTimeUtc (a timestamp) compares with another timestamp and not with a number."""
    system = {**SYSTEM, "ScheduledEnqueueTimeUtc": datetime(2027, 1, 1, tzinfo=UTC)}
    assert matches("sys.EnqueuedTimeUtc < sys.ScheduledEnqueueTimeUtc", system=system)
    assert not matches("sys.EnqueuedTimeUtc < 5", system=system)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("area = 'customer' AND company = 'USMF'", True),
        ("area = 'customer' AND company = 'DAT'", False),
        ("area = 'vendor' OR company = 'USMF'", True),
        ("area = 'vendor' OR company = 'DAT'", False),
        ("NOT area = 'vendor'", True),
        ("NOT area = 'customer'", False),
        # AND binds tighter than OR: true OR (false AND false).
        ("area = 'customer' OR company = 'DAT' AND priority = 0", True),
        ("(area = 'customer' OR company = 'DAT') AND priority = 0", False),
        # NOT binds tighter than AND: (NOT false) AND true.
        ("NOT area = 'vendor' AND company = 'USMF'", True),
        ("NOT (area = 'vendor' OR company = 'USMF')", False),
        ("((priority = 5))", True),
        ("(priority) = 5", True),
        ("((priority)) IN (4, 6)", False),
        ("NOT NOT priority = 5", True),
        ("area = 'customer' and company = 'USMF' Or priority = 0", True),
    ],
)
def test_boolean_operators_follow_sql_precedence_and_parentheses(expression, expected):
    """OR is loosest, then AND, then NOT; parentheses override; keywords are case-insensitive."""
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("missing = 1 OR priority = 5", True),
        ("missing = 1 AND priority = 5", False),
        ("NOT (missing = 1 AND priority = 0)", True),
        ("NOT (missing = 1 AND priority = 5)", False),
        ("NOT (missing = 1 OR priority = 0)", False),
    ],
)
def test_unknown_follows_the_three_valued_tables(expression, expected):
    """Unknown OR true is true, unknown AND false is false, and NOT unknown stays unknown."""
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("company IN ('DAT', 'USMF')", True),
        ("company IN ('DAT', 'GBSI')", False),
        ("company NOT IN ('DAT', 'GBSI')", True),
        ("company NOT IN ('DAT', 'USMF')", False),
        ("priority IN (1, 5.0)", True),
        ("sys.To IN ('fo', 'dataverse')", True),
        ("missing IN ('a')", False),
        ("missing NOT IN ('a')", False),
        ("company IN ('DAT', NULL)", False),
        ("company NOT IN ('DAT', NULL)", False),
        ("company IN (sys.To, 'USMF')", True),
    ],
)
def test_in_and_not_in(expression, expected):
    """IN matches a listed value; NOT IN the opposite; an unknown left side or NULL item leaves it unknown."""
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("sys.Label LIKE 'customer.%'", True),
        ("sys.Label LIKE 'vendor.%'", False),
        ("sys.Label LIKE '%updated'", True),
        ("sys.Label LIKE '%.upd_ted'", True),
        ("sys.Label LIKE '%.upd_ed'", False),
        ("sys.Label LIKE 'customer'", False),
        ("sys.Label NOT LIKE 'vendor.%'", True),
        ("sys.Label NOT LIKE 'customer.%'", False),
        ("company LIKE 'usmf'", False),
        ("priority LIKE '5'", False),
        ("missing NOT LIKE 'x'", False),
        ("[quote'd] LIKE 'it''s'", True),
    ],
)
def test_like_with_wildcards(expression, expected):
    """% is any run, _ one character; the whole value must match, case counts, non-strings are unknown."""
    assert matches(expression) is expected


def test_like_escape_makes_a_wildcard_literal():
    """With ESCAPE, an escaped % or _ matches only itself."""
    user = {"code": "ABC%", "other": "ABCD"}
    assert matches(r"code LIKE 'ABC\%' ESCAPE '\'", user=user)
    assert not matches(r"other LIKE 'ABC\%' ESCAPE '\'", user=user)
    assert matches("other LIKE 'ABC!_' ESCAPE '!'", user={"other": "ABC_"})
    assert not matches("other LIKE 'ABC!_' ESCAPE '!'", user=user)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("missing IS NULL", True),
        ("nothing IS NULL", True),
        ("company IS NULL", False),
        ("missing IS NOT NULL", False),
        ("company IS NOT NULL", True),
        ("sys.ReplyTo IS NULL", True),
        ("sys.To IS NOT NULL", True),
        ("EXISTS(company)", True),
        ("EXISTS (nothing)", True),
        ("EXISTS(missing)", False),
        ("NOT EXISTS(missing)", True),
        ("EXISTS(sys.SessionId)", True),
        ("EXISTS(sys.ReplyTo)", False),
    ],
)
def test_null_tests_and_exists(expression, expected):
    """IS NULL holds for a missing or null property; EXISTS holds for a present key, even one holding null."""
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("sys.MessageId = 'm-1'", True),
        ("sys.messageid = 'm-1'", True),
        ("SYS.Label = 'customer.updated'", True),
        ("sys.Subject = 'customer.updated'", True),
        ("sys.DeliveryCount = 1", True),
        ("sys.SequenceNumber > 41", True),
        ("sys.CorrelationId = 'other'", False),
        ("user.company = 'USMF'", True),
        ("USER.Company = 'USMF'", True),
        ("COMPANY = 'USMF'", True),
        ("[Property With Space] = 'x'", True),
        ("\"Property With Space\" = 'x'", True),
        ("user.[area] = 'customer'", True),
        ("[sys] = 1", False),
    ],
)
def test_system_and_user_properties(expression, expected):
    """sys. names read system properties, bare, user. and [delimited] names user ones, ignoring case."""
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "user", "expected"),
    [
        ("v = 'it''s'", {"v": "it's"}, True),
        ("v = 1.5", {"v": 1.5}, True),
        ("v = .5", {"v": 0.5}, True),
        ("v = 1e3", {"v": 1000}, True),
        ("v = 101.5E5", {"v": 10150000.0}, True),
        ("v = -5", {"v": -5}, True),
        ("v > -5.5", {"v": -5}, True),
        ("v = +2", {"v": 2}, True),
        ("v = 9223372036854775807", {"v": 2**63 - 1}, True),
        ("v = FALSE", {"v": False}, True),
        ("v = NULL", {"v": None}, False),
        ("ñame = 'x'", {"ñame": "x"}, True),
    ],
)
def test_literals(expression, user, expected):
    """String, integer, decimal, scientific, signed, boolean and NULL constants read as Service Bus does."""
    assert matches(expression, user=user) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [("1=1", True), ("1 = 0", False), ("TRUE", True), ("true", True), ("FALSE", False), ("NOT FALSE", True)],
)
def test_constant_filters(expression, expected):
    """The match-all 1=1 and TRUE/FALSE filters give the same answer for any message."""
    assert matches(expression, system={}, user={}) is expected
    assert matches(expression) is expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("priority + 1 = 6", r"unsupported arithmetic operator '\+' at position 10"),
        ("priority = 6 - 1", r"unsupported arithmetic operator '-' at position 14"),
        ("priority * 2 = 10", r"unsupported arithmetic operator '\*' at position 10"),
        ("priority / 2 = 1", r"unsupported arithmetic operator '/' at position 10"),
        ("priority % 2 = 1", r"unsupported arithmetic operator '%' at position 10"),
        ("-priority = 1", r"unsupported arithmetic operator '-' at position 1"),
        ("newid() = 'x'", r"unsupported function newid\(\) at position 1"),
        ("property('a') = 'x'", r"unsupported function property\(\) at position 1"),
        ("p('a') = 'x'", r"unsupported function p\(\) at position 1"),
        ("a = @param", r"unsupported parameter @param at position 5"),
        ("a = 1 # comment", r"unexpected character '#' at position 7"),
        ("sys.Colour = 'red'", r"unknown system property sys.Colour at position 5"),
        ("a = 'open", r"unterminated string starting at position 5"),
        ("[open = 1", r"unterminated \[identifier\] starting at position 1"),
        ("a = 1 b = 2", r"unexpected name 'b' at position 7"),
        ("a = 1 AND", r"expected a value or a property, found the end of the text at position 10"),
        ("a NOT = 1", r"expected IN or LIKE after NOT, found symbol '=' at position 7"),
        ("a IS 1", r"expected NULL after IS, found number '1' at position 6"),
        ("1 IS NULL", r"IS NULL needs a property, not the constant 1 at position 3"),
        ("a LIKE b", r"unsupported LIKE pattern name 'b': only a string constant at position 8"),
        (
            "a LIKE 'x' ESCAPE '!!'",
            r"ESCAPE needs a one-character string, found string \"'!!'\" at position 19",
        ),
        ("a LIKE 'x!' ESCAPE '!'", r"LIKE pattern at position 8 ends with its escape character"),
        ("LIKE = 1", r"expected a value or a property, found keyword 'LIKE' at position 1"),
        ("user.AND = 1", r"AND is a reserved keyword; write \[AND\] for a property at position 6"),
        ("a = 9223372036854775808", r"integer 9223372036854775808 at position 5 is outside the Int64 range"),
        ("a IN 1", r"expected '\(' after IN, found number '1' at position 6"),
        ("(a = 1", r"expected '\)' to close the parenthesis, found the end of the text at position 7"),
        ("(a = 1 AND newid() = 2)", r"unsupported function newid\(\) at position 12"),
        ("a", r"expected a comparison, IS, IN or LIKE after a, found the end of the text at position 2"),
        ("", r"expected a value or a property, found the end of the text at position 1"),
    ],
)
def test_constructs_outside_the_subset_are_refused_with_name_and_position(expression, message):
    """Arithmetic, functions, parameters, stray tokens and bad text are refused, saying what and where."""
    with pytest.raises(SandboxConfigError, match=message):
        compile_sql_filter(expression)


def test_compile_rule_names_the_rule_in_errors():
    """An error raised through compile_rule starts with the rule's name."""
    rule = RuleConfig(name="bad-rule", filter=SqlFilterConfig(expression="newid() = 1"))
    with pytest.raises(SandboxConfigError, match=r"^rule 'bad-rule': unsupported function newid\(\)"):
        compile_rule(rule)


def test_compile_rule_uses_the_rules_sql_filter():
    """A SQL rule compiles to its expression's match."""
    match = compile_rule(RuleConfig(name="r", filter=SqlFilterConfig(expression="company = 'USMF'")))
    assert match(SYSTEM, USER)
    assert not match(SYSTEM, {"company": "DAT"})


def test_correlation_filter_needs_every_given_field_to_equal():
    """A correlation filter matches when all its system and user fields equal the message's, else not."""
    spec = CorrelationFilterConfig(
        label="customer.updated", to="fo", properties={"company": "USMF", "priority": 5}
    )
    match = compile_correlation_filter(spec)
    assert match(SYSTEM, USER)
    assert not match({**SYSTEM, "To": "dataverse"}, USER)
    assert not match(SYSTEM, {**USER, "company": "DAT"})
    assert not match({k: v for k, v in SYSTEM.items() if k != "Label"}, USER)
    assert not match(SYSTEM, {"company": "USMF"})


def test_correlation_filter_compares_numbers_across_types_and_ids_by_text():
    """A numeric property matches 5 against 5.0, and a UUID correlation id matches its text form."""
    correlation = uuid.UUID("12345678-1234-5678-1234-567812345678")
    spec = CorrelationFilterConfig(correlation_id=str(correlation), properties={"priority": 5.0})
    match = compile_correlation_filter(spec)
    assert match({"CorrelationId": correlation}, {"priority": 5})
    assert not match({"CorrelationId": uuid.uuid4()}, {"priority": 5})
    assert not match({"CorrelationId": correlation}, {"priority": "5"})


def test_compile_rule_uses_the_rules_correlation_filter():
    """A correlation rule compiles to the correlation match of its filter."""
    match = compile_rule(RuleConfig(name="c", filter=CorrelationFilterConfig(session_id="s-7")))
    assert match(SYSTEM, USER)
    assert not match({**SYSTEM, "SessionId": "s-8"}, USER)


def test_compile_rules_matches_when_any_rule_does_and_everything_without_rules():
    """A subscription takes a message if any rule matches; with no rules (the $Default rule) it takes all."""
    rules = [
        RuleConfig(name="fo", filter=SqlFilterConfig(expression="sys.To = 'fo'")),
        RuleConfig(name="vendor", filter=CorrelationFilterConfig(properties={"area": "vendor"})),
    ]
    match = compile_rules(rules)
    assert match(SYSTEM, USER)
    assert match({}, {"area": "vendor"})
    assert not match({"To": "dataverse"}, {"area": "customer"})
    assert compile_rules([])({}, {})


def test_actions_set_and_remove_properties():
    """SET assigns user and system properties (from constants or other properties) and REMOVE deletes one."""
    rule = RuleConfig(
        name="a",
        filter=SqlFilterConfig(expression="1=1"),
        action="SET sys.To = 'Entity'; SET routed = TRUE; SET Copy = company; REMOVE PRIORITY; SET area='x';",
    )
    action = compile_action(rule)
    assert action is not None
    system, user = dict(SYSTEM), dict(USER)
    action(system, user)
    assert system["To"] == "Entity"
    assert user["routed"] is True
    assert user["Copy"] == "USMF"
    assert "priority" not in user
    assert user["area"] == "x"


def test_action_statements_need_no_semicolon_between_them():
    """Semicolons between statements are optional, as the action grammar has it."""
    rule = RuleConfig(name="a", filter=SqlFilterConfig(expression="1=1"), action="SET a = 1 SET b = 'x'")
    action = compile_action(rule)
    assert action is not None
    user: dict[str, object] = {}
    action({}, user)
    assert user == {"a": 1, "b": "x"}


def test_a_rule_without_an_action_has_none():
    """compile_action returns None for a rule with no action."""
    assert compile_action(RuleConfig(name="n", filter=SqlFilterConfig(expression="1=1"))) is None


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("SET sys.DeliveryCount = 1", r"unsupported SET of the system property sys.DeliveryCount"),
        ("REMOVE sys.To", r"unsupported REMOVE of the system property sys.To"),
        ("SET a = b + 1", r"unsupported arithmetic operator '\+' at position 11"),
        ("UPDATE a = 1", r"expected SET or REMOVE, found name 'UPDATE' at position 1"),
        ("SET a 1", r"expected '=' after SET a, found number '1' at position 7"),
        ("SET a = 1;;", r"unexpected symbol ';' at position 11"),
    ],
)
def test_unsupported_actions_are_refused_naming_the_rule(action, message):
    """An action outside SET/REMOVE of writable properties raises SandboxConfigError naming the rule."""
    rule = RuleConfig(name="act", filter=SqlFilterConfig(expression="1=1"), action=action)
    with pytest.raises(SandboxConfigError, match=rf"^rule 'act': action: {message}"):
        compile_action(rule)
