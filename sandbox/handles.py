"""What every running twin or emulator handle shares: ``with`` stops it on the way out."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["StopOnExit"]


class StopOnExit:
    """A running server whose ``stop()`` a ``with`` block calls when it ends, however it ends."""

    __slots__ = ()

    def stop(self) -> None:
        """End the server and wait for it."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
