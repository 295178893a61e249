"""The checkpoint store keeps progress durably and atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.checkpoints import CheckpointError, CheckpointStore


def test_checkpoint_survives_reopening(tmp_path: Path) -> None:
    """A checkpoint written before close is read back by a new store on the same file."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put("dataverse.delta.customers", "42!2024")
        store.put("initial.fo.customers.usmf", {"after": ["usmf", "C-9"], "pages": 3})
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        assert store.get("dataverse.delta.customers") == "42!2024"
        assert store.get("initial.fo.customers.usmf") == {"after": ["usmf", "C-9"], "pages": 3}
        assert store.get("missing", "default") == "default"


def test_put_many_writes_checkpoints_and_index_together(tmp_path: Path) -> None:
    """Checkpoints and row-index changes land in one transaction, and None removes an index entry."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put_many({"a": 1}, index=[("accounts", "id-1", {"key": {"k": "1"}, "version": 5})])
        assert store.row_ref("accounts", "id-1") == {"key": {"k": "1"}, "version": 5}
        assert store.row_ids("accounts") == ["id-1"]
        store.put_many({"a": 2}, index=[("accounts", "id-1", None)])
        assert store.row_ref("accounts", "id-1") is None
        assert store.get("a") == 2


def test_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    """A value that cannot be encoded aborts the whole write: the earlier checkpoint stays as it was."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put("a", 1)
        with pytest.raises(TypeError):
            store.put_many({"a": 2, "b": object()})
        assert store.get("a") == 1
        assert store.get("b") is None


def test_delete_prefix_forgets_only_matching_names(tmp_path: Path) -> None:
    """Deleting by prefix removes a finished run's checkpoints and keeps the others."""
    with CheckpointStore(tmp_path / "s.sqlite3") as store:
        store.put_many({"initial.fo.x": 1, "initial.fo.y": 2, "fo.watermark.x": "t"})
        store.delete_prefix("initial.fo.")
        assert store.names() == ["fo.watermark.x"]


def test_unopenable_store_raises_checkpoint_error(tmp_path: Path) -> None:
    """A path that cannot hold a database is reported as a CheckpointError."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CheckpointError):
        CheckpointStore(blocker / "sub" / "s.sqlite3")
