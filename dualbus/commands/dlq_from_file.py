"""What ``dlq replay --from-file`` takes from an (edited) export file: the bodies, and in each route the
letters to replay.

On Service Bus a sequence number is unique only within its entity (one subscription's dead-letter queue):
the file's letter 7 of customer/to-fo says nothing of vendor/to-fo's letter 7, or customer/to-dataverse's.
So a route selects only the sequence numbers the file holds for that very route.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson

from dualbus.ops.bodies import MessageBody
from dualbus.ops.deadletters import DeadLetterFilter
from dualbus.ops.dlq import ReplacementBody, Route
from dualbus.shared.errors import ConfigError

__all__ = ["FileBodies", "bodies_from_file", "route_bodies", "route_selection", "route_selections"]

# A body by the (area, subscription, sequence number) of the letter it replaces, with that letter's message
# id (checked when the letter is replayed: a recreated queue numbers other letters the same).
FileBodies = dict[tuple[str, str, int], ReplacementBody]


def bodies_from_file(path: Path) -> FileBodies:
    """Bodies by (area, subscription, sequence number) from an (edited) export file."""
    bodies: FileBodies = {}
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the export file: {exc.strerror}") from exc
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            key = (record["area"], record["subscription"], int(record["sequence_number"]))
            message_id = record.get("message_id")
            bodies[key] = ReplacementBody(
                str(message_id) if message_id is not None else None, MessageBody.from_json(record)
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{number}: not a dlq export line ({exc})") from exc
    return bodies


def route_bodies(route: Route, bodies: FileBodies) -> dict[int, ReplacementBody]:
    """The file's bodies of ``route``'s letters, by sequence number."""
    return {
        sequence: body
        for (area, subscription, sequence), body in bodies.items()
        if (area, subscription) == (route.area, route.subscription)
    }


def route_selection(selection: DeadLetterFilter, route: Route, bodies: FileBodies) -> DeadLetterFilter | None:
    """The letters to replay in ``route``: ``selection``, whose ids (``--id``) stand in every route, with the
    sequence numbers the file holds for this route; None when a file was given and names nothing here."""
    if not bodies:
        return selection
    in_route = frozenset(route_bodies(route, bodies))
    if not in_route and not selection.ids:
        return None  # else its other criteria alone would pick letters the file does not hold
    return replace(selection, sequence_numbers=selection.sequence_numbers | in_route)


def route_selections(
    routes: list[Route], selection: DeadLetterFilter, bodies: FileBodies
) -> dict[Route, DeadLetterFilter]:
    """What each route replays; a route the file names nothing in (and no ``--id``) is left alone."""
    picked = {route: route_selection(selection, route, bodies) for route in routes}
    return {route: chosen for route, chosen in picked.items() if chosen is not None}
