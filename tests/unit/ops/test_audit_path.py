"""Where the audit trail goes: the setting, else the state directory when set, else the user's state home."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualbus.ops.audit import audit_path
from dualbus.shared.settings import load_settings


@pytest.fixture(autouse=True)
def _nothing_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DUALBUS_AUDIT_FILE", "DUALBUS_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_the_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``DUALBUS_AUDIT_FILE`` names the file, whatever else is set."""
    monkeypatch.setenv("DUALBUS_AUDIT_FILE", str(tmp_path / "trail.jsonl"))
    monkeypatch.setenv("DUALBUS_STATE_DIR", str(tmp_path / "state"))
    assert audit_path(load_settings()) == tmp_path / "trail.jsonl"


def test_a_state_directory_that_was_set_holds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``DUALBUS_STATE_DIR`` set (as the producers' deployments do), the trail is kept beside them."""
    monkeypatch.setenv("DUALBUS_STATE_DIR", str(tmp_path / "state"))
    assert audit_path(load_settings()) == tmp_path / "state" / "audit.jsonl"


def test_by_default_it_is_the_users_state_home_never_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing set: ``$XDG_STATE_HOME/dualbus/audit.jsonl``, the same from any directory."""
    monkeypatch.chdir(tmp_path)
    chosen = audit_path(load_settings(), {"XDG_STATE_HOME": "/var/lib/operator-state"})
    assert chosen == Path("/var/lib/operator-state/dualbus/audit.jsonl")
    fallback = audit_path(load_settings(), {})
    assert fallback == Path.home() / ".local" / "state" / "dualbus" / "audit.jsonl"
    assert tmp_path not in fallback.parents
