"""The twins' write log: pages after any sequence, and a bound that drops only the oldest entries."""

from __future__ import annotations

import pytest

from dualbus.sandbox import write_log
from dualbus.sandbox.write_log import WriteLog


def _fill(log: WriteLog, count: int) -> list[int]:
    for n in range(count):
        log.add("accounts", {"accountid": str(n)}, "upsert", "writer", n, fields={"name": f"n{n}"})
    return [entry.sequence for entry in log.after(0, limit=10**9)]


def test_pages_after_any_sequence_follow_one_another() -> None:
    log = WriteLog()
    sequences = _fill(log, 50)
    assert sequences == sorted(sequences)
    assert [e.sequence for e in log.after(sequences[19], limit=5)] == sequences[20:25]
    assert log.after(sequences[-1]) == []
    assert [e.fields["name"] for e in log.after(sequences[47])] == ["n48", "n49"]


def test_past_the_bound_the_oldest_entries_go_and_the_newest_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write_log, "_KEPT", 10)
    monkeypatch.setattr(write_log, "_DROPPED_AT_ONCE", 4)
    log = WriteLog()
    sequences = _fill(log, 15)
    kept = [e.key["accountid"] for e in log.after(0, limit=100)]
    # At most the bound and the slack; always the newest ``_KEPT``; what went are the oldest.
    assert 10 <= len(kept) <= 14
    assert kept == [str(n) for n in range(15 - len(kept), 15)]
    assert sequences[-1] == log.after(0, limit=100)[-1].sequence
