"""Alert rules over dead-letters: "more than N of one reason in M minutes" → log, call a webhook, pause.

The monitor peeks each route's dead-letter queue, remembers when it first saw each dead-letter (by its
sequence number there) for as long as the letter stays in the queue, and evaluates every rule over that
sliding window. A rule that fired stays quiet for one window, so a storm raises one alert rather than one per
poll; a letter that stays in its queue is counted once, when it came, not again once it is older than a
window. What was dead-lettered before the monitor started is its baseline: never counted, so a restart does
not fire (or pause) on old news. An action that fails (the webhook unreachable, the pause not sent) is tried
again at each poll until it succeeds or the rule's window has passed since the firing.
The rules file's format is described in docs/operations.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dualbus.ops.deadletters import DeadLetter
from dualbus.shared.envelope import format_validation_error
from dualbus.shared.errors import ConfigError
from dualbus.shared.routing import UNROUTABLE
from dualbus.shared.topology import default_topology

__all__ = [
    "Action",
    "ActionStep",
    "AlertActions",
    "AlertRule",
    "AlertRules",
    "DeadLetterWindow",
    "Firing",
    "evaluate",
    "load_rules",
]

_log = logging.getLogger(__name__)
# The latest action failures kept for the caller (``AlertActions.errors``).
_ERRORS_KEPT = 100
# A year of minutes: a longer window is no alerting window, and a far longer one overflowed the date
# arithmetic at the first dead-letter, stopping the monitor when it was needed.
_LONGEST_WINDOW_MINUTES = 366 * 24 * 60


class Action(StrEnum):
    """What a firing rule does."""

    LOG = "log"
    WEBHOOK = "webhook"
    PAUSE = "pause"


class AlertRule(BaseModel):
    """Fire when at least ``threshold`` dead-letters matching the rule arrived within ``window_minutes``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    threshold: Annotated[int, Field(ge=1)]
    window_minutes: Annotated[float, Field(gt=0, le=_LONGEST_WINDOW_MINUTES)]
    reason: str | None = None
    area: str | None = None
    subscription: str | None = None
    actions: Annotated[tuple[Action, ...], Field(min_length=1)] = (Action.LOG,)
    webhook_url: str | None = None

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> Self:
        if Action.WEBHOOK in self.actions and not self.webhook_url:
            raise ValueError(f"rule {self.name!r} calls a webhook but has no webhook_url")
        return self

    @model_validator(mode="after")
    def _names_a_route_that_exists(self) -> Self:
        # A typo ("dataverse" for "to-dataverse") was accepted and the rule never fired.
        topology = default_topology()
        if self.area is not None and self.area not in topology.areas:
            raise ValueError(f"rule {self.name!r}: area {self.area!r} is none of {', '.join(topology.areas)}")
        names = sorted({sub.name for _, sub in topology.subscriptions()})
        if self.subscription is not None and self.subscription not in names:
            known = ", ".join(names)
            raise ValueError(f"rule {self.name!r}: subscription {self.subscription!r} is none of {known}")
        return self

    @property
    def window(self) -> timedelta:
        """The rule's sliding window."""
        return timedelta(minutes=self.window_minutes)

    def selects(self, letter: DeadLetter) -> bool:
        """Whether a dead-letter counts towards this rule."""
        return (
            (self.reason is None or letter.reason == self.reason)
            and (self.area is None or letter.area == self.area)
            and (self.subscription is None or letter.subscription == self.subscription)
        )


class AlertRules(BaseModel):
    """A rules file: ``{"rules": [...]}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[AlertRule, ...]


def load_rules(path: Path) -> AlertRules:
    """Read and validate a rules file; ConfigError names the file and the problem."""
    try:
        return AlertRules.model_validate(orjson.loads(path.read_bytes()))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the rules file: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from exc


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule that fired: what it counted, and on which route (area, subscription) to act."""

    rule: AlertRule
    count: int
    routes: tuple[tuple[str, str], ...]
    at: datetime

    def summary(self) -> dict[str, object]:
        """The firing as a JSON-ready dict (webhook body, log fields)."""
        return {
            "rule": self.rule.name,
            "count": self.count,
            "threshold": self.rule.threshold,
            "window_minutes": self.rule.window_minutes,
            "reason": self.rule.reason,
            "routes": [f"{area}/{subscription}" for area, subscription in self.routes],
            "at": self.at.isoformat(),
        }


@dataclass(slots=True)
class DeadLetterWindow:
    """When each dead-letter still in its queue was first seen; forgets the letters that left it.

    A letter is remembered for as long as it stays in its queue, however old: forgotten sooner, the next
    poll would see it as new, and an old letter nobody replayed would fire its rule (and pause its route)
    again every window.
    """

    _seen: dict[tuple[str, str, int], tuple[datetime, DeadLetter]] = field(default_factory=dict)
    _baseline: set[tuple[str, str, int]] = field(default_factory=set)

    def baseline(self, letters: Iterable[DeadLetter]) -> None:
        """Letters that were there before watching began: never counted by any rule."""
        self._baseline.update(_key(letter) for letter in letters)

    def observe(self, route: tuple[str, str], letters: Iterable[DeadLetter], now: datetime) -> None:
        """Record the letters one route's queue holds in this poll, ``route`` being (area, subscription):
        known ones keep their first-seen time, and those of the route no longer there are forgotten."""
        present = {_key(letter): letter for letter in letters}
        for key in [key for key in self._seen if key[:2] == route and key not in present]:
            del self._seen[key]
        self._baseline = {key for key in self._baseline if key[:2] != route or key in present}
        for key, letter in present.items():
            if key not in self._baseline:
                self._seen.setdefault(key, (now, letter))

    def within(self, window: timedelta, now: datetime) -> list[DeadLetter]:
        """Letters first seen within ``window`` of ``now``."""
        return [letter for seen, letter in self._seen.values() if seen >= now - window]


def _key(letter: DeadLetter) -> tuple[str, str, int]:
    return (letter.area, letter.subscription, letter.sequence_number)


def evaluate(
    rules: Sequence[AlertRule], window: DeadLetterWindow, now: datetime, last_fired: dict[str, datetime]
) -> list[Firing]:
    """The rules that fire now; updates ``last_fired`` so a rule stays quiet for one window after (its
    failed actions are tried again meanwhile, see ``AlertActions``)."""
    firings = []
    for rule in rules:
        previous = last_fired.get(rule.name)
        if previous is not None and now - previous < rule.window:
            continue
        matching = [letter for letter in window.within(rule.window, now) if rule.selects(letter)]
        if len(matching) >= rule.threshold:
            routes = tuple(sorted({(letter.area, letter.subscription) for letter in matching}))
            firings.append(Firing(rule=rule, count=len(matching), routes=routes, at=now))
            last_fired[rule.name] = now
    return firings


@dataclass(slots=True)
class AlertActions:
    """Carries out a firing's actions; each action is a callable so that the monitor stays testable.

    An action that fails is kept and tried again by ``retry_failed`` (each poll) until it succeeds or the
    rule's window has passed since the firing: a webhook down for a minute or a pause that could not be
    sent must not be lost while the rule stays quiet. It is no retry loop of its own: nothing waits here,
    the monitor's poll interval paces the attempts.
    """

    webhook: Callable[[str, dict[str, object]], None]
    pause: Callable[[str, str, str], None]
    errors: list[str] = field(default_factory=list)
    _failed: list[ActionStep] = field(default_factory=list)

    def run(self, firing: Firing) -> list[Action]:
        """Do every action of the rule; a failing action is logged, kept for a retry, and the others still
        run. Returns the actions that failed (a pause failed if it failed for any of its routes)."""
        failed = [step for step in _steps(firing) if not self._done(step)]
        self._failed.extend(failed)
        return [action for action in firing.rule.actions if any(step.action is action for step in failed)]

    def retry_failed(self, now: datetime) -> list[ActionStep]:
        """Try the failed steps again (those whose rule's window since the firing has not passed; the
        others are dropped, with a warning); returns those that succeeded now. A pause is retried for the
        routes it failed on only: one that went through is not sent again, which would undo an operator's
        resume in between."""
        pending, self._failed = self._failed, []
        succeeded = []
        for step in pending:
            if now - step.firing.at >= step.firing.rule.window:
                _log.warning("alert %s: gave up its %s after one window", step.firing.rule.name, step.label)
            elif self._done(step):
                succeeded.append(step)
            else:
                self._failed.append(step)
        return succeeded

    def _done(self, step: ActionStep) -> bool:
        firing = step.firing
        try:
            if step.action is Action.LOG:
                summary = firing.summary()
                _log.warning("alert %s fired: %s dead-letters", firing.rule.name, firing.count, extra=summary)
            elif step.action is Action.WEBHOOK and firing.rule.webhook_url:
                self.webhook(firing.rule.webhook_url, firing.summary())
            elif step.action is Action.PAUSE and step.route is not None:
                area, subscription = step.route
                self.pause(area, subscription, f"alert {firing.rule.name}: {firing.count} dead-letters")
        except Exception as exc:  # noqa: BLE001 - one failing action must not stop the others
            self.errors.append(f"{firing.rule.name}: {step.label}: {exc}")
            del self.errors[:-_ERRORS_KEPT]  # a webhook down for days must not grow a monitor's memory
            _log.warning("alert action failed", extra={"rule": firing.rule.name, "action": step.label})
            return False
        return True


@dataclass(frozen=True, slots=True)
class ActionStep:
    """One action of a firing; a pause is one step per route."""

    firing: Firing
    action: Action
    route: tuple[str, str] | None = None

    @property
    def label(self) -> str:
        """The action, and a pause's route: ``pause customer/to-dataverse``."""
        return self.action.value if self.route is None else f"{self.action.value} {'/'.join(self.route)}"


def _steps(firing: Firing) -> list[ActionStep]:
    """The firing's actions as steps. A pause skips the routes of the ``unroutable`` catch-all: no consumer
    works them, so a pause there would change nothing, and no resume would take it back."""
    steps = []
    for action in firing.rule.actions:
        if action is Action.PAUSE:
            routes = [route for route in firing.routes if route[1] != UNROUTABLE]
            steps += [ActionStep(firing, action, route) for route in routes]
        else:
            steps.append(ActionStep(firing, action))
    return steps
