"""Alert rules over dead-letters: "more than N of one reason in M minutes" → log, call a webhook, pause.

The monitor peeks each route's dead-letter queue, remembers when it first saw each dead-letter (by its
sequence number there), and evaluates every rule over that sliding window. A rule that fired stays quiet
for one window, so a storm raises one alert rather than one per poll. What was dead-lettered before the
monitor started is its baseline: never counted, so a restart does not fire (or pause) on old news.
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

__all__ = [
    "Action",
    "AlertActions",
    "AlertRule",
    "AlertRules",
    "DeadLetterWindow",
    "Firing",
    "evaluate",
    "load_rules",
]

_log = logging.getLogger(__name__)


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
    window_minutes: Annotated[float, Field(gt=0)]
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
    """When each dead-letter was first seen; forgets what is older than the longest window."""

    horizon: timedelta
    _seen: dict[tuple[str, str, int], tuple[datetime, DeadLetter]] = field(default_factory=dict)
    _baseline: set[tuple[str, str, int]] = field(default_factory=set)

    def baseline(self, letters: Iterable[DeadLetter]) -> None:
        """Letters that were there before watching began: never counted by any rule."""
        self._baseline.update(_key(letter) for letter in letters)

    def observe(self, letters: Iterable[DeadLetter], now: datetime) -> None:
        """Record letters seen in this poll (already known ones keep their first-seen time)."""
        for letter in letters:
            if _key(letter) not in self._baseline:
                self._seen.setdefault(_key(letter), (now, letter))
        cutoff = now - self.horizon
        for key in [key for key, (seen, _) in self._seen.items() if seen < cutoff]:
            del self._seen[key]

    def within(self, window: timedelta, now: datetime) -> list[DeadLetter]:
        """Letters first seen within ``window`` of ``now``."""
        return [letter for seen, letter in self._seen.values() if seen >= now - window]


def _key(letter: DeadLetter) -> tuple[str, str, int]:
    return (letter.area, letter.subscription, letter.sequence_number)


def evaluate(
    rules: Sequence[AlertRule], window: DeadLetterWindow, now: datetime, last_fired: dict[str, datetime]
) -> list[Firing]:
    """The rules that fire now; updates ``last_fired`` so a rule stays quiet for one window after."""
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
    """Carries out a firing's actions; each action is a callable so that the monitor stays testable."""

    webhook: Callable[[str, dict[str, object]], None]
    pause: Callable[[str, str, str], None]
    errors: list[str] = field(default_factory=list)

    def run(self, firing: Firing) -> None:
        """Do every action of the rule; a failing action is logged and the others still run."""
        summary = firing.summary()
        for action in firing.rule.actions:
            try:
                self._one(action, firing, summary)
            except Exception as exc:  # noqa: BLE001 - one failing action must not stop the others
                self.errors.append(f"{firing.rule.name}: {action.value}: {exc}")
                _log.warning("alert action failed", extra={"rule": firing.rule.name, "action": action.value})

    def _one(self, action: Action, firing: Firing, summary: dict[str, object]) -> None:
        if action is Action.LOG:
            _log.warning("alert %s fired: %s dead-letters", firing.rule.name, firing.count, extra=summary)
        elif action is Action.WEBHOOK and firing.rule.webhook_url:
            self.webhook(firing.rule.webhook_url, summary)
        elif action is Action.PAUSE:
            for area, subscription in firing.routes:
                self.pause(area, subscription, f"alert {firing.rule.name}: {firing.count} dead-letters")
