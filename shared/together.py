"""Awaiting several coroutines side by side, all or nothing, with the first failure raised as itself."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["side_by_side"]

T = TypeVar("T")


async def side_by_side(operations: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Each operation's result, in order; the first failure cancels the others, waits for them, and is raised.

    Unlike a TaskGroup the failure is raised as it is, not in an ExceptionGroup, so that callers keep
    catching the error tree's classes; unlike a bare gather no operation is left running behind it.
    """
    tasks = [asyncio.ensure_future(operation) for operation in operations]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
