"""Alert rules count dead-letters in a sliding window, fire once per window, and run their actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dualbus.ops.alerts import (
    Action,
    ActionStep,
    AlertActions,
    AlertRule,
    DeadLetterWindow,
    Firing,
    evaluate,
    load_rules,
)
from dualbus.ops.deadletters import DeadLetter
from dualbus.shared.errors import ConfigError

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _letter(sequence: int, reason: str = "UnresolvedLookup", area: str = "customer") -> DeadLetter:
    return DeadLetter(
        area=area,
        topic=f"dualbus.{area}",
        subscription="to-dataverse",
        sequence_number=sequence,
        message_id=f"m-{sequence}",
        reason=reason,
        description="",
        enqueued_time=T0,
        delivery_count=1,
        session_id=None,
        subject=None,
        content_type=None,
        body=b"{}",
    )


ROUTE = ("customer", "to-dataverse")
RULE = AlertRule(name="lookups", threshold=3, window_minutes=5, reason="UnresolvedLookup")


def test_rule_fires_at_threshold_within_window() -> None:
    """Three matching dead-letters within five minutes fire the rule; two do not."""
    window = DeadLetterWindow()
    window.observe(ROUTE, [_letter(1), _letter(2)], T0)
    assert evaluate([RULE], window, T0, {}) == []
    window.observe(ROUTE, [_letter(1), _letter(2), _letter(3)], T0 + timedelta(minutes=1))
    (firing,) = evaluate([RULE], window, T0 + timedelta(minutes=1), {})
    assert firing.count == 3
    assert firing.routes == (("customer", "to-dataverse"),)


def test_other_reasons_and_old_letters_do_not_count() -> None:
    """Letters of another reason, or first seen before the window, are not counted."""
    window = DeadLetterWindow()
    window.observe(ROUTE, [_letter(1), _letter(2)], T0)
    later = [_letter(1), _letter(2), _letter(3), _letter(4, reason="TargetRejected")]
    window.observe(ROUTE, later, T0 + timedelta(minutes=10))
    assert evaluate([RULE], window, T0 + timedelta(minutes=10), {}) == []


def test_letter_seen_again_keeps_its_first_seen_time() -> None:
    """Seeing the same dead-letter in later polls does not count it again or make it younger."""
    window = DeadLetterWindow()
    window.observe(ROUTE, [_letter(1)], T0)
    window.observe(ROUTE, [_letter(1)], T0 + timedelta(minutes=10))
    assert window.within(timedelta(minutes=5), T0 + timedelta(minutes=10)) == []


def test_rule_stays_quiet_for_one_window_after_firing() -> None:
    """A storm fires once per window, not once per poll."""
    window = DeadLetterWindow()
    last: dict[str, datetime] = {}
    window.observe(ROUTE, [_letter(n) for n in range(5)], T0)
    assert len(evaluate([RULE], window, T0, last)) == 1
    window.observe(ROUTE, [_letter(n) for n in range(10)], T0 + timedelta(minutes=1))
    assert evaluate([RULE], window, T0 + timedelta(minutes=1), last) == []
    window.observe(ROUTE, [_letter(n) for n in range(15)], T0 + timedelta(minutes=6))
    assert len(evaluate([RULE], window, T0 + timedelta(minutes=6), last)) == 1


def test_letters_left_in_their_queue_past_the_window_do_not_fire_the_rule_again() -> None:
    """Dead-letters nobody replayed stay in the queue for hours: counted once, when they came, they do not
    fire the rule (nor pause its route) again every window."""
    window = DeadLetterWindow()
    last: dict[str, datetime] = {}
    letters = [_letter(n) for n in range(3)]
    window.observe(ROUTE, letters, T0)
    assert len(evaluate([RULE], window, T0, last)) == 1
    for minutes in (6, 12, 30, 120):
        now = T0 + timedelta(minutes=minutes)
        window.observe(ROUTE, letters, now)
        assert evaluate([RULE], window, now, last) == []


def test_letters_that_left_their_queue_are_forgotten_and_other_routes_kept() -> None:
    """A letter replayed or purged is forgotten; a poll of one route leaves another route's letters."""
    window = DeadLetterWindow()
    other = _letter(7, area="vendor")
    window.observe(ROUTE, [_letter(1), _letter(2)], T0)
    window.observe(("vendor", "to-dataverse"), [other], T0)
    window.observe(ROUTE, [_letter(2)], T0 + timedelta(minutes=1))
    seen = window.within(timedelta(minutes=5), T0 + timedelta(minutes=1))
    assert sorted(letter.sequence_number for letter in seen) == [2, 7]


def test_a_baseline_letter_that_comes_back_is_new() -> None:
    """A sequence number of the baseline that left the queue and is seen again counts (numbers are not
    reused by Service Bus, but the baseline must not grow with every letter ever seen either)."""
    window = DeadLetterWindow()
    window.baseline([_letter(1)])
    window.observe(ROUTE, [_letter(1)], T0)
    assert window.within(timedelta(minutes=5), T0) == []
    window.observe(ROUTE, [], T0 + timedelta(minutes=1))
    window.observe(ROUTE, [_letter(1)], T0 + timedelta(minutes=2))
    assert [
        letter.sequence_number for letter in window.within(timedelta(minutes=5), T0 + timedelta(minutes=2))
    ] == [1]


def test_a_failed_action_is_tried_again_until_it_succeeds_within_the_window() -> None:
    """A webhook down at the firing is called at a later poll once it answers, then not again; a pause
    that went through is not repeated."""
    calls: list[str] = []
    paused: list[tuple[str, str]] = []
    down = [True]

    def webhook(url: str, _body: dict[str, object]) -> None:
        calls.append(url)
        if down[0]:
            raise RuntimeError("refused")

    rule = AlertRule(
        name="r",
        threshold=1,
        window_minutes=5,
        actions=(Action.WEBHOOK, Action.PAUSE),
        webhook_url="http://h",
    )
    actions = AlertActions(webhook=webhook, pause=lambda a, s, _: paused.append((a, s)))
    firing = Firing(rule=rule, count=1, routes=(("vendor", "to-fo"),), at=T0)
    assert actions.run(firing) == [Action.WEBHOOK]
    assert actions.retry_failed(T0 + timedelta(minutes=1)) == []  # still down
    down[0] = False
    assert actions.retry_failed(T0 + timedelta(minutes=2)) == [ActionStep(firing, Action.WEBHOOK)]
    assert actions.retry_failed(T0 + timedelta(minutes=3)) == []
    assert len(calls) == 3
    assert paused == [("vendor", "to-fo")]


def test_a_pause_is_retried_only_for_the_routes_it_failed_on() -> None:
    """A pause that went through for one route and failed for another is sent again to the second only:
    sending it again to the first would undo an operator's resume in between."""
    sent: list[tuple[str, str]] = []
    refused = {("vendor", "to-fo")}

    def pause(area: str, subscription: str, _reason: str) -> None:
        if (area, subscription) in refused:
            raise RuntimeError("control queue busy")
        sent.append((area, subscription))

    rule = AlertRule(name="r", threshold=1, window_minutes=5, actions=(Action.PAUSE,))
    actions = AlertActions(webhook=lambda *_: None, pause=pause)
    routes = (("customer", "to-dataverse"), ("vendor", "to-fo"))
    assert actions.run(Firing(rule=rule, count=2, routes=routes, at=T0)) == [Action.PAUSE]
    refused.clear()
    [late] = actions.retry_failed(T0 + timedelta(minutes=1))
    assert late.label == "pause vendor/to-fo"
    assert sent == [("customer", "to-dataverse"), ("vendor", "to-fo")]


def test_a_pause_leaves_the_unroutable_catch_all_alone() -> None:
    """No consumer works an area's unroutable subscription: a pause there would change nothing, and no
    resume would take it back."""
    sent: list[tuple[str, str]] = []
    rule = AlertRule(name="r", threshold=1, window_minutes=5, actions=(Action.PAUSE,))
    actions = AlertActions(webhook=lambda *_: None, pause=lambda a, s, _: sent.append((a, s)))
    routes = (("customer", "to-dataverse"), ("customer", "unroutable"))
    assert actions.run(Firing(rule=rule, count=2, routes=routes, at=T0)) == []
    assert sent == [("customer", "to-dataverse")]


def test_a_failed_action_is_given_up_once_its_window_has_passed() -> None:
    """An action still failing a whole window after its firing is dropped, not tried for ever."""
    calls: list[str] = []

    def webhook(url: str, _body: dict[str, object]) -> None:
        calls.append(url)
        raise RuntimeError("refused")

    rule = AlertRule(
        name="r", threshold=1, window_minutes=5, actions=(Action.WEBHOOK,), webhook_url="http://h"
    )
    actions = AlertActions(webhook=webhook, pause=lambda *_: None)
    actions.run(Firing(rule=rule, count=1, routes=(("vendor", "to-fo"),), at=T0))
    actions.retry_failed(T0 + timedelta(minutes=4))
    actions.retry_failed(T0 + timedelta(minutes=5))
    actions.retry_failed(T0 + timedelta(minutes=6))
    assert len(calls) == 2


def test_actions_run_and_a_failing_one_does_not_stop_the_rest() -> None:
    """Webhook and pause both run; a failing webhook is reported and the pause still happens."""
    paused: list[tuple[str, str]] = []

    def broken_webhook(url: str, _body: dict[str, object]) -> None:
        raise RuntimeError(f"cannot reach {url}")

    rule = AlertRule(
        name="r",
        threshold=1,
        window_minutes=1,
        actions=(Action.WEBHOOK, Action.PAUSE),
        webhook_url="http://127.0.0.1:9/hook",
    )
    actions = AlertActions(webhook=broken_webhook, pause=lambda a, s, _: paused.append((a, s)))
    actions.run(Firing(rule=rule, count=1, routes=(("vendor", "to-fo"),), at=T0))
    assert paused == [("vendor", "to-fo")]
    assert actions.errors == ["r: webhook: cannot reach http://127.0.0.1:9/hook"]


def test_webhook_rule_without_url_is_refused(tmp_path: Path) -> None:
    """A rules file whose webhook rule lacks a URL is refused, naming the file and the rule."""
    path = tmp_path / "alerts.json"
    path.write_text('{"rules": [{"name": "x", "threshold": 1, "window_minutes": 1, "actions": ["webhook"]}]}')
    with pytest.raises(ConfigError, match=r"alerts\.json.*rule 'x' calls a webhook but has no webhook_url"):
        load_rules(path)


def test_malformed_rules_file_names_the_problem(tmp_path: Path) -> None:
    """Bad JSON and bad values are clear errors."""
    path = tmp_path / "alerts.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not JSON"):
        load_rules(path)
    path.write_text('{"rules": [{"name": "x", "threshold": 0, "window_minutes": 1}]}')
    with pytest.raises(ConfigError, match="threshold"):
        load_rules(path)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        # Accepted by `alerts check`, it overflowed the date arithmetic at the first dead-letter seen.
        ('"window_minutes": 1e12', "window_minutes"),
        ('"window_minutes": 1, "subscription": "dataverse"', "subscription 'dataverse' is none of"),
        ('"window_minutes": 1, "area": "custmer"', "area 'custmer' is none of"),
    ],
)
def test_a_rule_that_could_never_work_is_refused_when_loaded(tmp_path: Path, rule: str, problem: str) -> None:
    """A rule whose window no date can hold, or whose route has a name no route has, never fired."""
    path = tmp_path / "alerts.json"
    path.write_text('{"rules": [{"name": "x", "threshold": 1, ' + rule + "}]}")
    with pytest.raises(ConfigError, match=problem):
        load_rules(path)
