"""Whether a tenant has what dualbus adds to it (``d365._prerequisites``, docs/deploy.md), asked first.

A synced F&O entity without dualbus's extension fields, or a Dataverse table without its version column,
refuses every write that names them: a consumer started on a tenant not yet prepared would dead-letter every
change, one by one. So a consumer first asks each entity it writes for those properties: ``$select`` naming
them with ``$top=1`` (one row at most) answers 200 when the entity has them all, and 400 "Could not find a
property named 'X' on type 'T'." for the first one it lacks. That text is OData's
``MetadataBinder_PropertyNotDeclared`` (https://github.com/OData/odata.net/blob/
015837a4c188edd4d3f81550bb432c6527745b54/src/Microsoft.OData.Core/Microsoft.OData.Core.txt); Dataverse
answers it to a ``$select`` as "Troubleshoot Dataverse Web API client errors" shows
(https://github.com/MicrosoftDocs/SupportArticles-docs/blob/fef32b26dcc5df30570bd2162f5b1d967b95ca97/
support/power-platform/power-apps/dataverse/web-api-client-errors.md). That F&O, whose OData service is
built on the same library, answers it inside its "An error has occurred." envelope is an inference no
public response shows (as sandbox/fo/validation.py says); so is the 404 for an entity set the service lacks,
OData's answer for a resource that does not exist. The lacking name is noted and the rest asked again; an
answer of any other kind stops the check rather than pass for "all there".
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from dualbus.d365 import DV_EXTENSION_COLUMNS, FO_EXTENSION_FIELDS
from dualbus.shared.api import ApiReader, error_message
from dualbus.shared.dataverse_keys import KeyGap, key_gaps
from dualbus.shared.errors import ConfigError, TransientError
from dualbus.shared.http import Response
from dualbus.shared.maps import Side
from dualbus.shared.retry import RECONNECT_RETRY, Backoff, RetryPolicy
from dualbus.shared.stopping import done_unless_stopped

__all__ = ["Lacking", "PrerequisiteError", "lacking", "prerequisite_names", "refusal", "require_prepared"]

_log = logging.getLogger("dualbus")
_SYSTEMS: dict[Side, str] = {"fo": "F&O", "dataverse": "Dataverse"}

_NOT_DECLARED = re.compile(r"Could not find a property named '(?P<name>[^']+)'")
_DEPLOY_STEP = "docs/deploy.md, 'Before you connect a real tenant'"


class PrerequisiteError(ConfigError):
    """The target lacks an entity or a property dualbus writes: every write to it would be refused."""


@dataclass(frozen=True, slots=True)
class Lacking:
    """What one entity set lacks: the set itself (``properties`` empty), or these properties of it."""

    entity_set: str
    properties: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not self.properties:
            return f"{self.entity_set} (no such entity set)"
        return f"{self.entity_set} has no {', '.join(self.properties)}"


def prerequisite_names(side: Side) -> tuple[str, ...]:
    """The properties dualbus writes on every synced entity of ``side``."""
    return tuple(FO_EXTENSION_FIELDS if side == "fo" else DV_EXTENSION_COLUMNS)


async def require_prepared(
    api: ApiReader,
    side: Side,
    wanted: Mapping[str, Sequence[str]],
    *,
    root: str,
    keys: Mapping[str, Collection[frozenset[str]]] | None = None,
    stop: asyncio.Event | None = None,
    retry: RetryPolicy = RECONNECT_RETRY,
) -> None:
    """Return once every entity set of ``wanted`` has the properties it names, and Dataverse every
    alternate key of ``keys`` (``shared.dataverse_keys``), or at once when ``stop`` is set (a question in
    flight is given up).

    PrerequisiteError naming every gap and the deployment step that fills it; a transient failure is logged
    and the question asked again after a growing wait.
    """
    stop = stop or asyncio.Event()
    backoff = Backoff(retry, stop)
    while not stop.is_set():
        asked = await done_unless_stopped(stop, _gaps(api, wanted, keys or {}, root=root))
        if asked.cancelled():
            return
        try:
            lacks = asked.result()
        except TransientError as exc:
            _log.warning(
                "cannot tell yet whether %s has what dualbus needs; asking again after a wait: %s",
                _SYSTEMS[side],
                exc,
            )
            await backoff.wait(exc)
            continue
        if lacks:
            raise refusal(side, lacks)
        return


async def _gaps(
    api: ApiReader,
    wanted: Mapping[str, Sequence[str]],
    keys: Mapping[str, Collection[frozenset[str]]],
    *,
    root: str,
) -> list[Lacking | KeyGap]:
    """What the tenant lacks of ``wanted``'s properties, then of ``keys``."""
    lacks: list[Lacking | KeyGap] = [*await lacking(api, wanted, root=root)]
    if keys:
        lacks.extend(await key_gaps(api, keys, root=root))
    return lacks


def refusal(side: Side, lacks: Sequence[Lacking | KeyGap]) -> PrerequisiteError:
    """The one-line error naming every gap of ``side`` and the deployment step that fills them."""
    gaps = "; ".join(map(str, lacks))
    return PrerequisiteError(f"{_SYSTEMS[side]} is not prepared for dualbus: {gaps} ({_DEPLOY_STEP})")


async def lacking(api: ApiReader, wanted: Mapping[str, Sequence[str]], *, root: str) -> list[Lacking]:
    """What each entity set of ``wanted`` lacks of the properties it names (an empty list when nothing).

    ``root`` is the path of the entity sets below the API's base URL. TransientError (from ``api``) when the
    service cannot answer now; PrerequisiteError when it answers something this check cannot read.
    """
    found = []
    for entity_set, names in wanted.items():
        missing = await _lacking_in(api, f"{root.strip('/')}/{entity_set}", list(names))
        if missing is not None:
            found.append(Lacking(entity_set, tuple(missing)))
    return found


async def _lacking_in(api: ApiReader, path: str, names: list[str]) -> list[str] | None:
    """The names the entity set lacks (None when it has them all, [] when the set itself is missing)."""
    missing: list[str] = []
    asked = list(names)
    while asked:
        response = await api.request("GET", path, params={"$select": ",".join(asked), "$top": "1"})
        if response.status_code == HTTPStatus.OK:
            break
        if response.status_code == HTTPStatus.NOT_FOUND:
            return []
        undeclared = _undeclared(response)
        if undeclared not in asked:
            raise PrerequisiteError(
                f"GET {path} with $select={','.join(asked)} answered {response.status_code} "
                f"{error_message(response)}: cannot tell whether dualbus's fields are there"
            )
        missing.append(undeclared)
        asked.remove(undeclared)
    return missing or None


def _undeclared(response: Response) -> str | None:
    if response.status_code != HTTPStatus.BAD_REQUEST:
        return None
    match = _NOT_DECLARED.search(error_message(response))
    return match.group("name") if match else None
