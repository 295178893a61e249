"""The pipeline's processes run their coroutines on uvloop where it is installed."""

from __future__ import annotations

import asyncio

import pytest

from dualbus.shared import loops

# A dependency wherever it builds (not on Windows, where asyncio's loop runs instead).
uvloop = pytest.importorskip("uvloop")


def test_a_coroutine_runs_on_uvloop_and_its_result_comes_back() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loops.run(main()).startswith("uvloop")


def test_a_failure_inside_comes_out_and_the_loop_is_closed() -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        seen.append(asyncio.get_running_loop())
        raise LookupError("inside")

    with pytest.raises(LookupError, match="inside"):
        loops.run(main())
    assert seen[0].is_closed()


def test_the_factory_is_uvloops_where_it_is_installed() -> None:
    assert loops.loop_factory() is uvloop.new_event_loop
