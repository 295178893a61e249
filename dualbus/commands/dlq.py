"""``dualbus dlq``: list, show, export, replay and purge dead-lettered messages."""

from __future__ import annotations

import contextlib
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
import typer
from rich.table import Table
from rich.text import Text

from dualbus.commands.common import (
    audit_log,
    console,
    fail,
    format_age,
    reported_errors,
    servicebus_settings,
    usage_error,
    writable_output,
)
from dualbus.commands.dlq_from_file import FileBodies, bodies_from_file, route_bodies, route_selections
from dualbus.ops.audit import AuditLog
from dualbus.ops.deadletters import DeadLetter, DeadLetterFilter, group_by_reason, parse_edits
from dualbus.ops.dlq import (
    OperationReport,
    Route,
    iter_dead_letters,
    peek_dead_letters,
    purge,
    replay,
    replay_body,
    select_routes,
)
from dualbus.ops.edits import body_changes, check_edits, envelope_fields
from dualbus.shared.bus import bus_client
from dualbus.shared.errors import ConfigError, TopologyError
from dualbus.shared.topology import UNROUTABLE, default_topology

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
# A century: older than any dead-letter, and bounded so that inf (and nan) are refused, not a timedelta's
# OverflowError; a negative age would select every letter.
_MAX_AGE_MINUTES = 100 * 366 * 24 * 60
OlderOption = Annotated[
    float | None,
    typer.Option(
        "--older-than-minutes",
        min=0,
        max=_MAX_AGE_MINUTES,
        help="Only messages enqueued at least this long ago.",
    ),
]
AllOption = Annotated[bool, typer.Option("--all", help="Select every dead-letter of the chosen areas.")]


def _subscriptions(directions: list[str] | None) -> frozenset[str]:
    names = {"dataverse": "to-dataverse", "fo": "to-fo", "to-dataverse": "to-dataverse", "to-fo": "to-fo"}
    names[UNROUTABLE] = UNROUTABLE  # each topic's catch-all (docs/processing.md)
    unknown = [d for d in directions or [] if d not in names]
    if unknown:
        raise usage_error(f"takes dataverse, fo or {UNROUTABLE}, not {', '.join(unknown)}", "--to")
    return frozenset(names[d] for d in directions or [])


def _routes(areas: list[str] | None, directions: list[str] | None) -> list[Route]:
    try:
        routes = select_routes(default_topology(), frozenset(areas or []), _subscriptions(directions))
    except TopologyError as exc:
        raise usage_error(str(exc), "--area") from exc
    if not routes:
        # An area whose maps go one way only has no subscription the other way (company: to Dataverse).
        existing = select_routes(default_topology(), frozenset(areas or []))
        listed = ", ".join(f"{route.area}/{route.subscription}" for route in existing)
        raise usage_error(f"no such route: the areas chosen have {listed}", "--to")
    return routes


def _sequence_numbers_in_one_route(ids: list[str] | None, routes: list[Route]) -> None:
    """Refuse an --id of digits (read as a sequence number too) for an action spanning several routes.

    Service Bus numbers each queue's messages on its own, so letter 42 exists in every route's dead-letter
    queue that has had 42 messages: replayed or purged over several routes, one number would act on each.
    """
    numbers = [value for value in ids or [] if value.isascii() and value.isdigit()]
    if numbers and len(routes) > 1:
        raise usage_error(
            f"{', '.join(numbers)}: a sequence number names a letter within one route only, and the "
            f"selection spans {len(routes)}: name one with --area and --to (dualbus dlq show ID lists "
            "where it is)",
            "--id",
        )


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
    return list(_iter_all(routes))


def _iter_all(routes: list[Route]) -> Iterator[DeadLetter]:
    with bus_client(servicebus_settings()) as client:
        for route in routes:
            yield from iter_dead_letters(client, route)


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
    routes = _routes(area, to)
    with reported_errors():
        if output is not None:
            writable_output(output)  # refused before the queues are read, not after
        # Written as they are read: a queue of any size, without holding its bodies at once.
        wanted = set(reason or [])
        with bus_client(servicebus_settings()) as client, _opened(output) as sink:
            exported = 0
            for route in routes:
                for letter in iter_dead_letters(client, route):
                    if not wanted or letter.reason in wanted:
                        sink.write(orjson.dumps(letter.to_json()) + b"\n")
                        exported += 1
    if output is not None:
        console.print(f"Exported {exported} message(s) to {output}")


@contextlib.contextmanager
def _opened(output: Path | None) -> Iterator[BinaryIO]:
    """The export's file, or stdout. The file is written beside it first and takes its name only once the
    export is whole: a failure halfway leaves no file that looks like all the letters."""
    if output is None:
        yield sys.stdout.buffer
        return
    # A device, a pipe or a link (``-o /dev/stdout``) is written as it is, not replaced.
    special = output.is_symlink() or (output.exists() and not output.is_file())
    target = output if special else output.with_name(output.name + ".part")
    try:
        with target.open("wb") as sink:
            yield sink
        if target != output:
            target.replace(output)
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write the export: {exc.strerror}") from exc
    finally:
        if target != output:
            target.unlink(missing_ok=True)


def _print_report(verb: str, route: Route, report: OperationReport) -> None:
    if not report.matched:
        return  # a route with nothing selected says nothing
    console.print(
        f"{route.area}/{route.subscription}: {verb} {len(report.done)} of {report.matched} selected"
    )
    for message_id, error in report.failed.items():
        console.print(Text.assemble("  ", ("failed", "red"), f" {message_id}: {error}"), highlight=False)


def _edits(assignments: list[str] | None, areas: list[str] | None, routes: list[Route]) -> dict[str, Any]:
    """The ``--set`` edits, checked against the maps of the chosen routes before anything is read or sent."""
    try:
        edits = parse_edits(assignments or [])
        check_edits(edits, areas or [], {route.subscription for route in routes})
    except ConfigError as exc:  # EditError, or an assignment that is not FIELD=VALUE
        raise usage_error(str(exc), "--set") from exc
    return edits


def _unknown_ids(ids: list[str] | None, found: set[str]) -> None:
    """Fail (exit 1) naming each asked-for id no dead-letter has."""
    missing = [value for value in ids or [] if value not in found]
    if missing:
        listed = ", ".join(missing)
        fail(f"no dead-lettered message has id or sequence number {listed} (see dualbus dlq list)")


def _none_failed(verb: str, failed: int) -> None:
    """Fail (exit 1) when some selected letters were not acted on: the command did not do what was asked."""
    if failed:
        fail(f"{failed} selected dead-letter(s) were not {verb} (each is named above, with why)")


def _letters_gone(places: set[tuple[str, str, int]]) -> None:
    """Fail (exit 1) naming each letter of the file that its route's queue does not hold (replayed or purged
    since, or the file is of another namespace or of the queue before it was recreated)."""
    if places:
        listed = ", ".join(f"{area}/{sub} #{number}" for area, sub, number in sorted(places))
        fail(f"the file's letters {listed} were not found in their dead-letter queues: not replayed")


def _dry_run(
    chosen: list[tuple[Route, DeadLetter]], edits: dict[str, Any], bodies: FileBodies, *, force: bool
) -> None:
    """Each letter as the replay would take it: the changes it would send (an edited file's and --set's),
    or why it would refuse it (too old, the file's body from another message, an edit it cannot take)."""
    now = datetime.now(UTC)
    sent = 0
    in_file = {route: route_bodies(route, bodies) for route in {route for route, _ in chosen}}
    for route, letter in chosen:
        where = f"{letter.area}/{letter.subscription} {letter.message_id}"
        replacement = in_file[route].get(letter.sequence_number)
        try:
            body = replay_body(letter, route, replacement, edits, force=force, now=now)
        except ConfigError as exc:
            console.print(f"would not replay {where}: {exc}", highlight=False)
            continue
        sent += 1
        console.print(f"would replay {where} ({letter.reason})", highlight=False)
        for change in body_changes(envelope_fields(letter.message_body), envelope_fields(body)):
            console.print(f"  set {change.describe()}", highlight=False)
    console.print(f"{sent} message(s) would be replayed")


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
        Path | None,
        typer.Option(
            "--from-file",
            help="Replay the (edited) bodies of a dlq export file.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be replayed; change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replay letters older than the subscription's message TTL too (their records' deletes may "
            "be forgotten: check first that each record still exists).",
        ),
    ] = False,
) -> None:
    """Send dead-lettered messages back to the subscription they came from, optionally edited.

    --set takes data.FIELD=VALUE, FIELD being one the area's maps carry (checked before anything is sent);
    --dry-run shows each message's edit. An --id no dead-letter has fails (exit code 1).

    Example: dualbus dlq replay --area customer --reason UnresolvedLookup --set data.SalesCurrencyCode=USD
    """
    routes = _routes(area, to)
    _sequence_numbers_in_one_route(ids, routes)
    edits = _edits(set_, area, routes)
    with reported_errors():
        bodies = bodies_from_file(from_file) if from_file else {}
        selection = _selection(ids, reason, area, older_than_minutes, everything=everything)
        if selection.is_empty and not bodies:
            raise usage_error("nothing selected: give --id, --reason, --area, an age, --from-file or --all")
        selections = route_selections(routes, selection, bodies)
        if dry_run:
            chosen = _peek_selected(selections)
            _dry_run(chosen, edits, bodies, force=force)
            _unknown_ids(ids, {key for _, c in chosen for key in (c.message_id, str(c.sequence_number))})
            return
        audit = audit_log()
        found: set[str] = set()
        failed = 0
        reached: set[tuple[str, str, int]] = set()  # the file's letters that are still there
        with bus_client(servicebus_settings()) as client:
            for route, picked in selections.items():
                report = replay(
                    client,
                    route,
                    picked,
                    audit=audit,
                    edits=edits,
                    bodies=route_bodies(route, bodies),
                    force=force,
                )
                _print_report("replayed", route, report)
                found |= report.matched_ids
                failed += len(report.failed)
                numbers = {int(i) for i in report.matched_ids if i.isdigit()}
                here = (route.area, route.subscription)
                reached |= {place for place in bodies if place[:2] == here and place[2] in numbers}
        _summary("replayed", found, audit)
        _unknown_ids(ids, found)
        _none_failed("replayed", failed)
        if not (reason or older_than_minutes):  # else the file's other letters may be left out on purpose
            places = {(route.area, route.subscription) for route in selections}
            _letters_gone({place for place in bodies if place[:2] in places} - reached)


def _peek_selected(selections: dict[Route, DeadLetterFilter]) -> list[tuple[Route, DeadLetter]]:
    now = datetime.now(UTC)
    with bus_client(servicebus_settings()) as client:
        return [
            (route, letter)
            for route, picked in selections.items()
            for letter in peek_dead_letters(client, route)
            if picked.matches(letter, now)
        ]


def _summary(verb: str, found: set[str], audit: AuditLog) -> None:
    if not found:
        console.print(f"Nothing {verb}: no dead-letter matched the selection.")
        return
    console.print(f"Audit trail: {audit.path}", highlight=False, soft_wrap=True)


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
    routes = _routes(area, to)
    _sequence_numbers_in_one_route(ids, routes)
    selection = _selection(ids, reason, area, older_than_minutes, everything=everything)
    if selection.is_empty:
        raise usage_error("nothing selected: give --id, --reason, --area, an age, or --all")
    with reported_errors():
        now = datetime.now(UTC)
        chosen = [letter.place for letter in _iter_all(routes) if selection.matches(letter, now)]
        if not chosen:
            console.print("Nothing to purge: no dead-letter matches the selection.")
            _unknown_ids(ids, set())
            return
        counts = Counter(f"{area}/{subscription}" for area, subscription, _ in chosen)
        where = ", ".join(f"{count} in {route}" for route, count in sorted(counts.items()))
        if not yes and not typer.confirm(f"Remove {len(chosen)} dead-letter(s) for good ({where})?"):
            raise typer.Abort
        # Exactly the letters counted above: none that arrived or came of age since, none of another route.
        confirmed = replace(selection, letters=frozenset(chosen))
        audit = audit_log()
        found: set[str] = set()
        failed = reached = 0
        with bus_client(servicebus_settings()) as client:
            for route in routes:
                report = purge(client, route, confirmed, audit=audit)
                _print_report("purged", route, report)
                found |= report.matched_ids
                failed += len(report.failed)
                reached += report.matched
        if reached < len(chosen):
            gone = len(chosen) - reached
            console.print(f"{gone} of the {len(chosen)} counted had gone meanwhile (replayed or purged).")
        _summary("purged", found, audit)
        _unknown_ids(ids, found)
        _none_failed("purged", failed)


def register(app: typer.Typer) -> None:
    """Add the ``dlq`` group to the CLI."""
    app.add_typer(dlq_app, name="dlq")
