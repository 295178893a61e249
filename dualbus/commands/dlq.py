"""``dualbus dlq``: list, show, export, replay and purge dead-lettered messages."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from dualbus.commands.common import console, format_age, reported_errors, servicebus_settings
from dualbus.ops.audit import AuditLog
from dualbus.ops.bodies import MessageBody
from dualbus.ops.deadletters import DeadLetter, DeadLetterFilter, group_by_reason, parse_edits
from dualbus.ops.dlq import OperationReport, Route, peek_dead_letters, purge, replay, select_routes
from shared.bus import bus_client
from shared.errors import ConfigError
from shared.settings import load_settings
from shared.topology import UNROUTABLE, default_topology

__all__ = ["register"]

dlq_app = typer.Typer(help="Inspect, export, replay and purge dead-lettered messages.", no_args_is_help=True)

AreaOption = Annotated[list[str] | None, typer.Option("--area", "-a", help="Only this area (repeatable).")]
ToOption = Annotated[
    list[str] | None,
    typer.Option("--to", help="Only this direction: dataverse, fo, or unroutable (repeatable)."),
]
IdOption = Annotated[
    list[str] | None, typer.Option("--id", help="A message id or sequence number (repeatable).")
]
ReasonOption = Annotated[list[str] | None, typer.Option("--reason", "-r", help="A reason code (repeatable).")]
OlderOption = Annotated[
    float | None, typer.Option("--older-than-minutes", help="Only messages enqueued at least this long ago.")
]
AllOption = Annotated[bool, typer.Option("--all", help="Select every dead-letter of the chosen areas.")]


def _subscriptions(directions: list[str] | None) -> frozenset[str]:
    names = {"dataverse": "to-dataverse", "fo": "to-fo", "to-dataverse": "to-dataverse", "to-fo": "to-fo"}
    names[UNROUTABLE] = UNROUTABLE  # each topic's catch-all (docs/processing.md)
    unknown = [d for d in directions or [] if d not in names]
    if unknown:
        raise ConfigError(f"--to takes dataverse, fo or {UNROUTABLE}, not {', '.join(unknown)}")
    return frozenset(names[d] for d in directions or [])


def _routes(areas: list[str] | None, directions: list[str] | None) -> list[Route]:
    return select_routes(default_topology(), frozenset(areas or []), _subscriptions(directions))


def _selection(
    ids: list[str] | None,
    reasons: list[str] | None,
    areas: list[str] | None,
    older: float | None,
    *,
    everything: bool,
) -> DeadLetterFilter:
    return DeadLetterFilter(
        ids=frozenset(ids or []),
        reasons=frozenset(reasons or []),
        areas=frozenset(areas or []),
        older_than=timedelta(minutes=older) if older is not None else None,
        everything=everything,
    )


def _peek_all(routes: list[Route]) -> list[DeadLetter]:
    with bus_client(servicebus_settings()) as client:
        return [letter for route in routes for letter in peek_dead_letters(client, route)]


@dlq_app.command("list")
def list_(area: AreaOption = None, to: ToOption = None) -> None:
    """Dead-lettered messages per area and subscription, grouped by reason, with counts and ages.

    Example: dualbus dlq list --area customer
    """
    with reported_errors():
        now = datetime.now(UTC)
        groups = group_by_reason(_peek_all(_routes(area, to)), now)
    if not groups:
        console.print("No dead-lettered messages.")
        return
    table = Table("area", "subscription", "reason", "count", "oldest", "newest", "example")
    for g in groups:
        table.add_row(
            g.area,
            g.subscription,
            g.reason,
            str(g.count),
            format_age(g.oldest),
            format_age(g.newest),
            g.example_description[:80],
        )
    console.print(table)
    console.print("Replay a group: dualbus dlq replay --area AREA --reason REASON [--set data.FIELD=VALUE]")


@dlq_app.command("show")
def show(
    message: Annotated[str, typer.Argument(help="A message id or sequence number.")],
    area: AreaOption = None,
    to: ToOption = None,
) -> None:
    """Everything about one dead-lettered message: body (of any kind), properties, reason, counts.

    Searches every area unless told where (each area and direction searched takes about a second).

    Example: dualbus dlq show 6f1c2d4e-8a7b-4c1d-9e2f-3a4b5c6d7e8f --area customer
    """
    with reported_errors():
        selection = DeadLetterFilter(ids=frozenset({message}))
        now = datetime.now(UTC)
        found = [letter for letter in _peek_all(_routes(area, to)) if selection.matches(letter, now)]
        if not found:
            raise ConfigError(f"no dead-lettered message has id or sequence number {message!r}")
    for letter in found:
        console.print_json(orjson.dumps(letter.to_json()).decode())


@dlq_app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="A JSON-lines file; stdout if absent.")
    ] = None,
    area: AreaOption = None,
    to: ToOption = None,
    reason: ReasonOption = None,
) -> None:
    """Write dead-lettered messages as JSON lines (edit the bodies, then `dlq replay --from-file`).

    Example: dualbus dlq export --reason UnresolvedLookup -o lookups.jsonl
    """
    with reported_errors():
        letters = [
            letter for letter in _peek_all(_routes(area, to)) if not reason or letter.reason in set(reason)
        ]
    lines = b"".join(orjson.dumps(letter.to_json()) + b"\n" for letter in letters)
    if output is None:
        sys.stdout.buffer.write(lines)
    else:
        output.write_bytes(lines)
        console.print(f"Exported {len(letters)} message(s) to {output}")


def _bodies_from_file(path: Path) -> dict[tuple[str, str, int], MessageBody]:
    """Bodies by (area, subscription, sequence number) from an (edited) export file."""
    bodies: dict[tuple[str, str, int], MessageBody] = {}
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            key = (record["area"], record["subscription"], int(record["sequence_number"]))
            bodies[key] = MessageBody.from_json(record)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{number}: not a dlq export line ({exc})") from exc
    return bodies


def _print_report(verb: str, route: Route, report: OperationReport) -> None:
    console.print(
        f"{route.area}/{route.subscription}: {verb} {len(report.done)} of {report.matched} selected"
    )
    for message_id, error in report.failed.items():
        console.print(f"  [red]failed[/red] {message_id}: {error}")


@dlq_app.command("replay")
def replay_(
    *,
    ids: IdOption = None,
    reason: ReasonOption = None,
    area: AreaOption = None,
    to: ToOption = None,
    older_than_minutes: OlderOption = None,
    everything: AllOption = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Edit before replaying: data.FIELD=VALUE (repeatable).")
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Replay the (edited) bodies of a dlq export file.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed; change nothing.")
    ] = False,
) -> None:
    """Send dead-lettered messages back to the subscription they came from, optionally edited.

    Example: dualbus dlq replay --area customer --reason UnresolvedLookup --set data.SalesCurrencyCode=USD
    """
    with reported_errors():
        edits = parse_edits(set_ or [])
        bodies = _bodies_from_file(from_file) if from_file else {}
        file_ids = {str(seq) for (_, _, seq) in bodies}
        selection = _selection(
            [*(ids or []), *file_ids], reason, area, older_than_minutes, everything=everything
        )
        routes = _routes(area, to)
        if dry_run:
            now = datetime.now(UTC)
            chosen = [letter for letter in _peek_all(routes) if selection.matches(letter, now)]
            for letter in chosen:
                console.print(
                    f"would replay {letter.area}/{letter.subscription} {letter.message_id} ({letter.reason})"
                )
            console.print(f"{len(chosen)} message(s) would be replayed")
            return
        audit = AuditLog(load_settings().state_dir / "audit.jsonl")
        with bus_client(servicebus_settings()) as client:
            for route in routes:
                route_bodies = {
                    seq: body
                    for (a, s, seq), body in bodies.items()
                    if (a, s) == (route.area, route.subscription)
                }
                report = replay(client, route, selection, audit=audit, edits=edits, bodies=route_bodies)
                _print_report("replayed", route, report)


@dlq_app.command("purge")
def purge_(
    *,
    ids: IdOption = None,
    reason: ReasonOption = None,
    area: AreaOption = None,
    to: ToOption = None,
    older_than_minutes: OlderOption = None,
    everything: AllOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove dead-lettered messages for good (asks first unless --yes).

    Example: dualbus dlq purge --reason TargetRejected --older-than-minutes 1440 --yes
    """
    with reported_errors():
        selection = _selection(ids, reason, area, older_than_minutes, everything=everything)
        if selection.is_empty:
            raise ConfigError("no dead-letters selected: give --id, --reason, --area, an age, or --all")
        routes = _routes(area, to)
        if not yes and not typer.confirm("Remove the selected dead-letters for good?"):
            raise typer.Exit(code=1)
        audit = AuditLog(load_settings().state_dir / "audit.jsonl")
        with bus_client(servicebus_settings()) as client:
            for route in routes:
                _print_report("purged", route, purge(client, route, selection, audit=audit))


def register(app: typer.Typer) -> None:
    """Add the ``dlq`` group to the CLI."""
    app.add_typer(dlq_app, name="dlq")
