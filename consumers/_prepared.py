"""Before its first message, a consumer asks its target whether the tenant has dualbus's fields (and, in
Dataverse, the alternate keys its maps address rows by).

Without them every write is refused, so a consumer that went ahead would dead-letter its whole backlog one
change at a time; instead it stops with one error naming each entity and field it lacks (the check:
``shared.prerequisites``). While the target cannot answer (down, throttled) the question is asked again
after a growing wait and nothing is received meanwhile: no change could be applied then either.
"""

from __future__ import annotations

import asyncio
from functools import partial

from dualbus.shared.api import ApiClient
from dualbus.shared.dataverse_keys import keys_written
from dualbus.shared.maps import MapSet, Side
from dualbus.shared.prerequisites import prerequisite_names, require_prepared

__all__ = ["check_target", "failure_of", "require_target_prepared"]


def check_target(
    api: ApiClient, *, area: str, target: Side, maps: MapSet, root: str, stop: asyncio.Event
) -> asyncio.Task[None]:
    """``require_target_prepared`` as a task; should it fail, ``stop`` is set, so that the consumer ends."""
    task = asyncio.create_task(require_target_prepared(api, area=area, target=target, maps=maps, root=root))
    task.add_done_callback(partial(_stop_on_failure, stop))
    return task


def failure_of(task: asyncio.Task[None]) -> BaseException | None:
    """A finished task's exception; None when it succeeded or was cancelled."""
    return None if task.cancelled() else task.exception()


def _stop_on_failure(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    if failure_of(task) is not None:
        stop.set()


async def require_target_prepared(
    api: ApiClient, *, area: str, target: Side, maps: MapSet, root: str
) -> None:
    """Return once every entity the area's maps write on ``target`` has dualbus's fields, and in Dataverse
    the alternate keys they address rows by (``shared.dataverse_keys``).

    PrerequisiteError naming what is missing; a transient failure is retried (logged) until it answers.
    """
    names = prerequisite_names(target)
    wanted = {m.table_on(target): names for m in maps.in_area(area) if m.carries(target)}
    keys = keys_written(maps, area) if target == "dataverse" else None
    await require_prepared(api, target, wanted, root=root, keys=keys)
