"""The alert monitor's loop: peek dead-letter queues, evaluate the rules, act (webhook, pause)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

from dualbus.ops.alerts import AlertActions, AlertRules, DeadLetterWindow, Firing, evaluate
from dualbus.ops.audit import AuditLog
from dualbus.ops.dlq import VIEW_LIMIT, Route, peek_dead_letters
from dualbus.shared.bus_types import BusClient
from dualbus.shared.control import route_name, send_command
from dualbus.shared.errors import TransientError
from dualbus.shared.http import HttpClient, HttpError, http_client, send

__all__ = ["AlertMonitor"]

_WEBHOOK_TIMEOUT_SECONDS = 10.0


class AlertMonitor:
    """Polls the dead-letter queues of ``routes`` and fires ``rules``; bounded by the caller's loop."""

    def __init__(
        self,
        client: BusClient,
        rules: AlertRules,
        routes: list[Route],
        *,
        control_queue: str,
        audit: AuditLog,
        http: HttpClient | None = None,
    ) -> None:
        self._client = client
        self._rules = rules
        self._routes = routes
        self._control_queue = control_queue
        self._audit = audit
        self._owns_http = http is None
        self._http = http or http_client(timeout=_WEBHOOK_TIMEOUT_SECONDS)
        self._window = DeadLetterWindow()
        self._last_fired: dict[str, datetime] = {}
        self._started = False
        self.actions = AlertActions(webhook=self._post, pause=self._pause)

    def poll(self, now: datetime | None = None) -> list[Firing]:
        """One round: peek, evaluate, act. Returns what fired.

        The first round only takes the baseline: what is dead-lettered already does not count, and nothing
        fires (or pauses a route) for it.
        """
        moment = now or datetime.now(UTC)
        if not self._started:
            self._started = True
            for route in self._routes:
                self._window.baseline(peek_dead_letters(self._client, route, limit=VIEW_LIMIT))
            return []
        for route in self._routes:
            letters = peek_dead_letters(self._client, route, limit=VIEW_LIMIT)
            self._window.observe((route.area, route.subscription), letters, moment)
        for step in self.actions.retry_failed(moment):
            self._audit.record(
                "alert", "action-done-late", rule=step.firing.rule.name, late_action=step.label
            )
        firings = evaluate(self._rules.rules, self._window, moment, self._last_fired)
        for firing in firings:
            failed = self.actions.run(firing)
            details = {**firing.summary(), "failed_actions": [action.value for action in failed]}
            self._audit.record("alert", "fired", **details)
        return firings

    def run(self, *, interval: float, until: Callable[[], bool]) -> int:
        """Poll every ``interval`` seconds until ``until()`` is true; returns how many alerts fired."""
        fired = 0
        while not until():
            fired += len(self.poll())
            time.sleep(interval)
        return fired

    def close(self) -> None:
        """Release the webhook HTTP client (when the monitor made it)."""
        if self._owns_http:
            self._http.close()

    def _post(self, url: str, summary: dict[str, object]) -> None:
        try:
            response = send(self._http, "POST", url, json=summary)
        except HttpError as exc:
            raise TransientError(f"the alert webhook is unreachable: {exc.kind}") from exc
        if response.status_code >= HTTPStatus.BAD_REQUEST:
            raise TransientError(f"the alert webhook answered {response.status_code}")

    def _pause(self, area: str, subscription: str, reason: str) -> None:
        send_command(
            self._client,
            self._control_queue,
            route=route_name(area, subscription),
            paused=True,
            by="dualbus-alerts",
            reason=reason,
        )
