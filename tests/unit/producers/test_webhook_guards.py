"""What the webhook refuses before it keeps anything: an empty key (at start-up), a body over the size cap
(413, before it is all read), and an event whose dates cannot be told (400, not a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from dualbus.producers import fo_webhook
from dualbus.producers.fo_webhook import webhook_app
from dualbus.producers.settings import load_producer_settings
from dualbus.shared.errors import ConfigError
from tests.unit.producers.contexts import data_event
from tests.unit.producers.webhook_parts import EVENT, KEY, ROW, http_to, webhook_parts

_KEY_VARIABLE = "DUALBUS_PRODUCER__FO_WEBHOOK_KEY"
_ROW_ID = "00004c03-0000-0000-0100-000000000000"
# Dates no datetime holds: past the largest timedelta, more digits than int() reads, outside years 1-9999.
IMPOSSIBLE_DATES = [
    "/Date(99999999999999999)/",
    pytest.param(f"/Date({'9' * 5000})/", id="/Date(<5000 digits>)/"),
    "/Date(-99999999999999)/",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]


@pytest.fixture
def parts(tmp_path: Path):
    with webhook_parts(tmp_path) as made:
        yield made


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_webhook_key_is_refused_when_the_settings_are_loaded(
    monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    """A key variable that resolved to nothing (a missing secret) would let any caller in: refused, in one
    line naming the variable, rather than taken as a key that an empty ``code`` matches."""
    monkeypatch.setenv(_KEY_VARIABLE, empty)
    with pytest.raises(ConfigError, match=_KEY_VARIABLE) as refused:
        load_producer_settings()
    assert "\n" not in str(refused.value)


def test_a_webhook_key_left_unset_is_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, the variable still means no key (events accepted, with the warning the webhook logs)."""
    monkeypatch.delenv(_KEY_VARIABLE, raising=False)
    assert load_producer_settings().fo_webhook_key is None
    monkeypatch.setenv(_KEY_VARIABLE, KEY)
    key = load_producer_settings().fo_webhook_key
    assert key is not None
    assert key.get_secret_value() == KEY


def test_a_webhook_app_cannot_be_built_with_an_empty_key(parts) -> None:
    """Whoever builds the app past the settings, an empty key is no key check: refused there too."""
    _, _, inbox, _ = parts
    with pytest.raises(ConfigError, match=_KEY_VARIABLE):
        webhook_app(inbox, key=SecretStr(""))


@pytest.mark.asyncio
async def test_a_body_declared_over_the_cap_is_refused_with_413(parts, monkeypatch) -> None:
    """A Content-Length over the cap is answered 413 before any of the body is read, and nothing is kept."""
    _, _, inbox, store = parts
    monkeypatch.setattr(fo_webhook, "MAX_BODY_BYTES", 1024)
    async with http_to(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=b" " * 1025)
    assert response.status_code == 413
    assert "1024" in response.json()["error"]
    assert store.inbox(10) == []


@pytest.mark.asyncio
async def test_a_chunked_body_is_refused_with_413_as_soon_as_it_passes_the_cap(parts, monkeypatch) -> None:
    """Without a Content-Length the body is counted as it streams: the webhook stops reading once it is
    over the cap, not after it has held all of it."""
    _, _, inbox, store = parts
    monkeypatch.setattr(fo_webhook, "MAX_BODY_BYTES", 1024)
    sent = 0

    async def endless_body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 256

    async with http_to(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=endless_body())
    assert response.status_code == 413
    assert sent <= 5  # 1024 bytes are four chunks: the fifth goes over
    assert store.inbox(10) == []


@pytest.mark.asyncio
async def test_a_body_at_the_cap_is_read(parts, monkeypatch) -> None:
    """The cap is a limit, not a bar: an event of exactly that many bytes (padded JSON) is kept."""
    _, _, inbox, store = parts
    monkeypatch.setattr(fo_webhook, "MAX_BODY_BYTES", len(EVENT) + 10)
    async with http_to(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, content=EVENT + b" " * 10)
    assert response.status_code == 200
    assert len(store.inbox(10)) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("date", IMPOSSIBLE_DATES)
@pytest.mark.parametrize("where", ["OperationCreatedOn", "CredManLastReviewDate"])
async def test_an_event_with_an_impossible_date_is_answered_400(parts, date: str, where: str) -> None:
    """A date no datetime can hold, in the context or in a date field, is a payload never usable: 400
    naming it, not a 500 with a traceback; nothing is kept."""
    _, _, inbox, store = parts
    if where == "OperationCreatedOn":
        event = {**data_event("OnExternalCreated", "CustomersV3", _ROW_ID, ROW), where: date}
    else:
        event = data_event("OnExternalCreated", "CustomersV3", _ROW_ID, {**ROW, where: date})
    async with http_to(inbox) as http:
        response = await http.post("/fo/events", params={"code": KEY}, json=event)
    assert response.status_code == 400
    assert "date-time" in response.json()["error"]
    assert store.inbox(10) == []
