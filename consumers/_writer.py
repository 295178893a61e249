"""Who dualbus writes as in Dataverse: the user id the conflict rule tells dualbus's own writes by.

Asked with ``WhoAmI`` (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami)
on its own, never inside a ``$batch``. Until it is known no change may be applied: the conflict rule would
take every row for someone else's edit, or (were an unknown id let through) for dualbus's own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from http import HTTPStatus

from dualbus.consumers._batch import Requester
from dualbus.shared.api import error_message
from dualbus.shared.errors import TransientError
from dualbus.shared.http import Response
from dualbus.shared.retry import RetryPolicy

__all__ = ["WriterIdentity"]

_log = logging.getLogger("dualbus.consumer")


class WriterIdentity:
    """dualbus's Dataverse user id, asked for once and kept."""

    def __init__(self, api: Requester, *, root: str, user_id: str | None = None) -> None:
        """``api`` must send requests one by one (not batched); ``root`` is the Web API path."""
        self._api = api
        self._root = root.strip("/")
        self.user_id = user_id
        self._asking = asyncio.Lock()

    async def learn(self, *, attempts: int, policy: RetryPolicy | None = None) -> str | None:
        """Ask until Dataverse answers or ``attempts`` transient failures pass; None while still unknown."""
        retry = dataclasses.replace(policy or RetryPolicy(), attempts=attempts, budget_seconds=None)
        try:
            return await retry.call(self.require)
        except TransientError as exc:
            _log.warning("dualbus's Dataverse user id unknown after %d tries: %s", attempts, exc)
            return None

    async def require(self) -> str:
        """The user id, asked for now when not known yet; TransientError while Dataverse cannot say."""
        if self.user_id is None:
            # One question at a time: records waiting together share its answer.
            async with self._asking:
                if self.user_id is None:
                    self.user_id = await self._ask()
        return self.user_id

    async def _ask(self) -> str:
        response = await self._api.request("GET", f"{self._root}/WhoAmI")
        user_id = _user_id(response) if response.status_code == HTTPStatus.OK else None
        if user_id is None:
            # Retried, not dead-lettered: a wrong URL or a missing role is fixed by an operator.
            raise TransientError(
                f"WhoAmI answered {response.status_code} {error_message(response)}: without dualbus's "
                "Dataverse user id no change is applied"
            )
        return user_id


def _user_id(response: Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    user_id = body.get("UserId") if isinstance(body, dict) else None
    return str(user_id) if user_id else None
