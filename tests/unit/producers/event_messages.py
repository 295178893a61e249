"""A data event message as the Service Bus intake receives it, for the intake's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson

from dualbus.sandbox.fo.context import data_event_payload
from dualbus.sandbox.fo.store import Change

__all__ = ["currency_event_message"]


def currency_event_message(message_id: str = "m-1", *, operation_created_on: str | None = None) -> Any:
    """A currency update's data event message; ``operation_created_on`` replaces the event's own time."""
    change = Change(
        entity="Currencies",
        change_type="Update",
        keys={"CurrencyCode": "EUR"},
        row={"CurrencyCode": "EUR", "Name": "Euro"},
        before={"CurrencyCode": "EUR", "Name": "euro"},
        changed_fields=("Name",),
        sequence=1,
        time=datetime(2026, 6, 1, tzinfo=UTC),
        modified_by="someone",
        rec_id=5637144576,
    )
    payload = data_event_payload(change)
    if operation_created_on is not None:
        payload = {**payload, "OperationCreatedOn": operation_created_on}
    return SimpleNamespace(
        message_id=message_id, content_type="application/json", body=[orjson.dumps(payload)]
    )
