"""Awaiting several coroutines side by side, each to its end, with the first failure raised as itself."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["side_by_side"]

T = TypeVar("T")


async def side_by_side(operations: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Each operation's result, in order; after a failure the others still run to their end, then the first
    failure (in call order) is raised.

    The others are not cancelled: one may be publishing, and a send cut off midway leaves it unknown what
    went out. Unlike a TaskGroup the failure is raised as it is, not in an ExceptionGroup, so that callers
    keep catching the error tree's classes; unlike a bare gather no operation is left running behind it.
    Cancelling the caller cancels them all.
    """
    results = await asyncio.gather(*operations, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]  # no exception among them
