"""``open_once`` with a receiver that is not azure-servicebus 7.15's: its settings are given back, and a
handler whose read timeout cannot be set back is said, not passed over (its receives would read in 1 s)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dualbus.shared.bus_calls import open_once
from dualbus.shared.errors import TransientError


class _Receiver:
    def __init__(self, handler: Any, *, fails: bool = False) -> None:
        self._config = SimpleNamespace(retry_total=3, socket_timeout=0.05)
        self._handler = handler
        self.fails = fails
        self.read_while_open: float | None = None

    async def __aenter__(self) -> _Receiver:
        self.read_while_open = self._config.socket_timeout
        if self.fails:
            raise TransientError("no session came")
        return self


@pytest.mark.asyncio
async def test_a_handler_and_connection_get_the_short_reads_back() -> None:
    handler = SimpleNamespace(_socket_timeout=1.0, _connection=SimpleNamespace(_socket_timeout=1.0))
    receiver = _Receiver(handler)
    await open_once(receiver, read_while_waiting=1.0)  # type: ignore[arg-type]
    assert receiver.read_while_open == 1.0
    assert (receiver._config.socket_timeout, receiver._config.retry_total) == (0.05, 3)
    assert (handler._socket_timeout, handler._connection._socket_timeout) == (0.05, 0.05)


@pytest.mark.asyncio
async def test_a_handler_without_the_sdks_attributes_is_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    receiver = _Receiver(SimpleNamespace(_connection=None))
    await open_once(receiver, read_while_waiting=1.0)  # type: ignore[arg-type]
    assert "read timeout could not be set back to 0.05 s" in caplog.text
    assert receiver._config.socket_timeout == 0.05


@pytest.mark.asyncio
async def test_a_look_that_failed_gives_its_settings_back_and_warns_of_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = _Receiver(None, fails=True)
    with pytest.raises(TransientError):
        await open_once(receiver, read_while_waiting=1.0)  # type: ignore[arg-type]
    assert (receiver._config.socket_timeout, receiver._config.retry_total) == (0.05, 3)
    assert "read timeout" not in caplog.text
