"""A stop that comes while the demo starts a child is handled once the child is registered, not before."""

from __future__ import annotations

import os
import signal

import pytest

from dualbus.demo.processes import _interrupts_deferred
from dualbus.demo.run import signals_interrupt


def _start_interrupted(reached: list[str]) -> None:
    """A start during which SIGTERM comes, as the demo's registration would meet it."""
    with _interrupts_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("the rest of the block")
    reached.append("after the block")


def test_a_sigterm_in_the_block_interrupts_as_it_ends() -> None:
    reached: list[str] = []
    with signals_interrupt(), pytest.raises(KeyboardInterrupt):
        _start_interrupted(reached)
    assert reached == ["the rest of the block"]


def test_the_demos_handlers_are_back_after_the_block() -> None:
    with signals_interrupt():
        before = signal.getsignal(signal.SIGTERM)
        with _interrupts_deferred():
            pass
        assert signal.getsignal(signal.SIGTERM) is before
