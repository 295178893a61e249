"""What the console does, on the bus and the audit trail, through ``dualbus.ops`` (as the CLI does).

Each page reads or acts through one :class:`Operations`; the web layer knows nothing of Service Bus. Every
action is audited with the console's operator (who signed in, or the OS user on loopback) and ``via:
console``, so the trail tells the console's actions from the CLI's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dualbus.console.edits import check_edits, edited_body
from dualbus.demo.monitor import read_stats
from dualbus.demo.stats import RouteStats
from dualbus.ops.audit import AuditLog, audit_path
from dualbus.ops.deadletters import DeadLetter, DeadLetterFilter, ReasonGroup, group_by_reason
from dualbus.ops.dlq import (
    VIEW_LIMIT,
    OperationReport,
    Route,
    peek_dead_letters,
    purge,
    replay,
    select_routes,
)
from dualbus.shared.bus import bus_client
from dualbus.shared.bus_admin import admin_counts
from dualbus.shared.control import RouteState, read_states, route_name, send_command
from dualbus.shared.errors import ConfigError
from dualbus.shared.maps import MapSet, load_maps
from dualbus.shared.settings import ServiceBusSettings, Settings
from dualbus.shared.topology import Topology, default_topology

__all__ = [
    "Backend",
    "ConsoleAudit",
    "LetterRef",
    "Operations",
    "ReplayPreview",
    "RouteRow",
]


class ConsoleAudit(AuditLog):
    """The audit trail, each line naming the console's operator and that the console acted."""

    def __init__(self, path: Path, operator: str) -> None:
        super().__init__(path)
        self.operator = operator

    def record(self, action: str, outcome: str, **details: Any) -> None:  # noqa: ANN401 - JSON details
        """Append one line; ``operator`` and ``via`` override the OS user the CLI records."""
        super().record(action, outcome, **{**details, "operator": self.operator, "via": "console"})


@dataclass(frozen=True, slots=True)
class LetterRef:
    """One dead-letter as a page names it: its route and its sequence number in that dead-letter queue."""

    area: str
    subscription: str
    sequence_number: int

    @classmethod
    def parse(cls, text: str) -> LetterRef:
        """``area/subscription/sequence``, as the pages' check boxes carry it; ConfigError otherwise."""
        parts = text.split("/")
        if len(parts) != 3 or not parts[2].isdigit():  # noqa: PLR2004 - three parts
            raise ConfigError(f"not a dead-letter reference: {text!r} (area/subscription/sequence)")
        return cls(parts[0], parts[1], int(parts[2]))

    def __str__(self) -> str:
        return f"{self.area}/{self.subscription}/{self.sequence_number}"


@dataclass(slots=True)
class RouteRow:
    """One route's line on the routes page: live counts from the bus, totals from the metrics files."""

    area: str
    subscription: str
    backlog: int
    dead_lettered: int
    paused: RouteState | None
    stats: RouteStats | None

    @property
    def name(self) -> str:
        """``area/subscription``."""
        return route_name(self.area, self.subscription)


@dataclass(slots=True)
class ReplayPreview:
    """What a replay would send: each message's body before and after the edits, or why it cannot."""

    letters: list[DeadLetter] = field(default_factory=list)
    after: dict[str, bytes] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many messages the replay would send (the dry-run count)."""
        return len(self.letters) - len(self.problems)


class Backend(Protocol):
    """What the pages need; :class:`Operations` in production, a stand-in in the web layer's tests."""

    def routes(self) -> list[RouteRow]:
        """Every consumer route with its counts and state."""
        ...

    def set_paused(self, area: str, subscription: str, *, paused: bool, reason: str, who: str) -> None:
        """Pause or resume one route through the control queue."""
        ...

    def groups(self) -> list[ReasonGroup]:
        """Dead-letters grouped by route and reason."""
        ...

    def letters(self, area: str | None, subscription: str | None, reason: str | None) -> list[DeadLetter]:
        """Dead-letters, narrowed to a route and reason when given."""
        ...

    def letter(self, ref: LetterRef) -> DeadLetter:
        """One dead-letter; ConfigError when it is gone."""
        ...

    def preview_replay(self, refs: Sequence[LetterRef], edits: Mapping[str, Any]) -> ReplayPreview:
        """The dry run of a replay: what would be sent."""
        ...

    def replay(
        self, refs: Sequence[LetterRef], edits: Mapping[str, Any], *, who: str
    ) -> dict[str, OperationReport]:
        """Replay the messages (edited), per route."""
        ...

    def purge(self, refs: Sequence[LetterRef], *, who: str) -> dict[str, OperationReport]:
        """Remove the messages for good, per route."""
        ...

    def audit(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        ...

    def record(self, who: str, action: str, outcome: str, **details: Any) -> None:  # noqa: ANN401
        """Add one line to the audit trail."""
        ...


class Operations:
    """The console's :class:`Backend` against a real namespace (Azure or the emulator)."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics_dir: Path | None = None,
        topology: Topology | None = None,
        maps: MapSet | None = None,
    ) -> None:
        self.settings = settings
        self.metrics_dir = metrics_dir
        self.topology = topology or default_topology()
        self.maps = maps if maps is not None else load_maps()

    @property
    def bus_settings(self) -> ServiceBusSettings:
        """The Service Bus settings, or a ConfigError naming the variable to set."""
        if self.settings.servicebus is None:
            raise ConfigError(
                "Service Bus is not configured: set DUALBUS_SERVICEBUS__CONNECTION_STRING "
                "(or DUALBUS_SERVICEBUS__NAMESPACE to use Entra ID)"
            )
        return self.settings.servicebus

    def routes(self) -> list[RouteRow]:
        """Each consumer route: backlog and dead-letters from the bus, pause state, metrics totals."""
        pairs = [(topic.area, sub.name) for topic, sub in self.topology.routes()]
        stats = {(s.area, s.direction): s for s in self._stats(pairs)}
        with bus_client(self.bus_settings) as client:
            states = read_states(client, self.topology.control_queue)
        rows = []
        with admin_counts(self.bus_settings) as counts:
            for area, subscription in pairs:
                numbers = counts.subscription(self.topology.topic(area).name, subscription)
                state = states.get(route_name(area, subscription))
                rows.append(
                    RouteRow(
                        area=area,
                        subscription=subscription,
                        backlog=numbers.active,
                        dead_lettered=numbers.dead_lettered,
                        paused=state if state is not None and state.paused else None,
                        stats=stats.get((area, subscription)),
                    )
                )
        return rows

    def _stats(self, pairs: Sequence[tuple[str, str]]) -> list[RouteStats]:
        if self.metrics_dir is None or not self.metrics_dir.is_dir():
            return []
        return read_stats(self.metrics_dir, pairs)

    def set_paused(self, area: str, subscription: str, *, paused: bool, reason: str, who: str) -> None:
        """Send the pause or resume command (consumers follow within seconds) and audit it."""
        topic = self.topology.topic(area)
        if subscription not in {sub.name for sub in topic.subscriptions}:
            raise ConfigError(f"{area} has no consumer route {subscription!r}")
        route = route_name(area, subscription)
        audit = ConsoleAudit(audit_path(self.settings), who).writable()
        with bus_client(self.bus_settings) as client:
            send_command(
                client, self.topology.control_queue, route=route, paused=paused, by=who, reason=reason
            )
        audit.record("pause" if paused else "resume", "sent", route=route, reason=reason)

    def groups(self) -> list[ReasonGroup]:
        """Dead-letters grouped by route and reason, largest group first."""
        return group_by_reason(self.letters(None, None, None), datetime.now(UTC))

    def letters(self, area: str | None, subscription: str | None, reason: str | None) -> list[DeadLetter]:
        """Every dead-letter of the routes that hold any (peeked, nothing locked)."""
        routes = self._routes_with_letters(area, subscription)
        with bus_client(self.bus_settings) as client:
            found = [
                letter for route in routes for letter in peek_dead_letters(client, route, limit=VIEW_LIMIT)
            ]
        return [letter for letter in found if reason is None or letter.reason == reason]

    def _routes_with_letters(self, area: str | None, subscription: str | None) -> list[Route]:
        routes = select_routes(
            self.topology,
            frozenset([area] if area else []),
            frozenset([subscription] if subscription else []),
        )
        if len(routes) == 1:
            return routes  # one peek costs less than asking first
        # Peeking an empty dead-letter queue costs a link each; the counts tell which to skip.
        with admin_counts(self.bus_settings) as counts:
            return [r for r in routes if counts.subscription(r.topic, r.subscription).dead_lettered > 0]

    def letter(self, ref: LetterRef) -> DeadLetter:
        """One dead-letter by route and sequence number."""
        for letter in self.letters(ref.area, ref.subscription, None):
            if letter.sequence_number == ref.sequence_number:
                return letter
        raise ConfigError(f"no dead-letter {ref} (replayed or purged meanwhile?)")

    def preview_replay(self, refs: Sequence[LetterRef], edits: Mapping[str, Any]) -> ReplayPreview:
        """Each selected message with its body after the edits; a message the edits do not fit is named."""
        preview = ReplayPreview()
        wanted = {str(ref) for ref in refs}
        found: set[str] = set()
        for area, subscription in sorted({(ref.area, ref.subscription) for ref in refs}):
            for letter in self.letters(area, subscription, None):
                ref = str(LetterRef(letter.area, letter.subscription, letter.sequence_number))
                if ref not in wanted:
                    continue
                found.add(ref)
                preview.letters.append(letter)
                try:
                    check_edits(letter, edits)
                    preview.after[ref] = edited_body(letter, edits)
                except ConfigError as exc:
                    preview.problems[ref] = str(exc)
        preview.missing = sorted(wanted - found)
        return preview

    def replay(
        self, refs: Sequence[LetterRef], edits: Mapping[str, Any], *, who: str
    ) -> dict[str, OperationReport]:
        """Check every edit first (nothing is sent if one does not fit), then replay route by route."""
        preview = self.preview_replay(refs, edits)
        if preview.problems:
            ref, problem = next(iter(preview.problems.items()))
            raise ConfigError(f"nothing replayed: {ref}: {problem}")
        if not preview.letters:
            raise ConfigError("nothing replayed: none of the selected dead-letters is there any more")
        audit = ConsoleAudit(audit_path(self.settings), who).writable()
        return self._per_route(
            refs, lambda client, route, selection: replay(client, route, selection, audit=audit, edits=edits)
        )

    def purge(self, refs: Sequence[LetterRef], *, who: str) -> dict[str, OperationReport]:
        """Remove the selected dead-letters for good, each audited."""
        audit = ConsoleAudit(audit_path(self.settings), who).writable()
        return self._per_route(
            refs, lambda client, route, selection: purge(client, route, selection, audit=audit)
        )

    def _per_route(self, refs: Sequence[LetterRef], action: Any) -> dict[str, OperationReport]:  # noqa: ANN401
        if not refs:
            raise ConfigError("no dead-letters selected: tick at least one")
        reports: dict[str, OperationReport] = {}
        with bus_client(self.bus_settings) as client:
            for area, subscription in sorted({(ref.area, ref.subscription) for ref in refs}):
                routes = select_routes(self.topology, frozenset([area]), frozenset([subscription]))
                if not routes:
                    raise ConfigError(f"no route {area}/{subscription}")
                (route,) = routes
                numbers = frozenset(
                    r.sequence_number for r in refs if (r.area, r.subscription) == (area, subscription)
                )
                ticked = DeadLetterFilter(sequence_numbers=numbers, subscriptions=frozenset([subscription]))
                reports[route_name(area, subscription)] = action(client, route, ticked)
        return reports

    def audit(self) -> list[dict[str, Any]]:
        """The audit trail the CLI and the console share."""
        return AuditLog(audit_path(self.settings)).read()

    def record(self, who: str, action: str, outcome: str, **details: Any) -> None:  # noqa: ANN401
        """Add one line to the audit trail as ``who``."""
        ConsoleAudit(audit_path(self.settings), who).record(action, outcome, **details)
