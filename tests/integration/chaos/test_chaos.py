"""The whole pipeline under SIGKILL of a consumer, a producer and the emulator: nothing lost, none twice.

Bounded: about 20 s of live changes after a set-up of a minute or so, then at most 90 s to settle; the
figures of longer runs come from ``python -m bench.chaos``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.chaos.run import ChaosOptions, run_chaos

# ``long``: handed to a worker first (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.long]


@pytest.mark.timeout(480)
def test_kill_9_of_each_part_during_live_changes_loses_nothing_applies_nothing_twice_and_ends_in_step(
    tmp_path: Path,
) -> None:
    """Every kind of process killed at least once; then reconcile and the twins' write logs are clean."""
    result = run_chaos(
        ChaosOptions(run_dir=tmp_path, duration=20.0, rate=5.0, kill_every=3.0, settle_timeout=90.0)
    )
    figures = result.as_dict()
    assert set(result.kills) == {"consumer", "producer", "emulator"}, figures
    assert result.changes >= 50, figures
    assert (result.lost, result.duplicated, result.drift, result.dead_lettered) == (0, 0, 0, 0), figures
