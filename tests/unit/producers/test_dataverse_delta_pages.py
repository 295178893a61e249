"""A delta of more changes than a page holds is read to its last page before its token is kept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dualbus.producers.checkpoints import CheckpointStore
from dualbus.producers.dataverse import DataverseSource
from dualbus.producers.events import EchoFilter
from dualbus.producers.publisher import Publisher
from dualbus.producers.tables import source_tables
from dualbus.shared.envelope import Operation, Origin
from dualbus.shared.maps import load_maps
from dualbus.shared.topology import default_topology
from tests.unit.producers.fakes import RecordingClient, sent_envelopes

API = "https://dv.example/api/data/v9.2/"
NEXT_PAGE = f"{API}transactioncurrencies?$deltatoken=t1&$skiptoken=page2"


def _currency(code: str, version: int) -> dict[str, Any]:
    return {
        "transactioncurrencyid": f"00000000-0000-0000-0000-00000000000{version}",
        "isocurrencycode": code,
        "currencyname": code,
        "currencysymbol": code[0],
        "versionnumber": version,
        "modifiedon": "2026-01-02T03:04:05Z",
        "_modifiedby_value": "maker",
    }


class PagedDelta:
    """A snapshot of EUR, then a delta in two pages: USD changed; then GBP changed and EUR deleted."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        self.requests.append(f"{method} {path}")
        params = options.get("params") or {}
        if path == NEXT_PAGE:
            deleted = {
                "@odata.context": f"{API}$metadata#transactioncurrencies/$deletedEntity",
                "id": _currency("EUR", 1)["transactioncurrencyid"],
                "reason": "deleted",
            }
            body = {"value": [_currency("GBP", 3), deleted], "@odata.deltaLink": f"{API}x?$deltatoken=t2"}
        elif "$deltatoken" in params:
            body = {"value": [_currency("USD", 2)], "@odata.nextLink": NEXT_PAGE}
        else:
            body = {"value": [_currency("EUR", 1)], "@odata.deltaLink": f"{API}x?$deltatoken=t1"}
        return httpx.Response(200, json=body)


@contextmanager
def currencies_from(
    api: object, client: RecordingClient, tmp_path: Path
) -> Iterator[tuple[DataverseSource, CheckpointStore]]:
    """The Dataverse producer's currency table over ``api``, with its store, publishing to ``client``."""
    with CheckpointStore(tmp_path / "producer-dataverse.sqlite3") as store:
        tables = source_tables(load_maps(), Origin.DATAVERSE, ["currency"])
        publisher = Publisher(client, default_topology())  # type: ignore[arg-type]
        yield DataverseSource(api, tables, publisher, store, EchoFilter.of()), store  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_every_page_of_a_delta_is_published_and_the_last_pages_token_kept(tmp_path: Path) -> None:
    client = RecordingClient(max_bytes=256 * 1024)
    api = PagedDelta()
    with currencies_from(api, client, tmp_path) as (source, store):
        assert await source.poll_once() == 1
        assert await source.poll_once() == 3
        assert store.get("dataverse.delta.currency") == "t2"
    assert f"GET {NEXT_PAGE}" in api.requests
    published = [(e.operation, e.key["isocurrencycode"]) for e in sent_envelopes(client, "dualbus.currency")]
    assert published[1:] == [
        (Operation.CREATE, "USD"),
        (Operation.CREATE, "GBP"),
        (Operation.DELETE, "EUR"),
    ]


class SnapshotWithAnUnkeyedRow:
    """A snapshot of two currencies, one of them without its ISO code (the currencies map's key)."""

    async def request(self, _method: str, _path: str, **_options: Any) -> httpx.Response:
        unkeyed = {**_currency("XXX", 2), "isocurrencycode": None}
        body = {"value": [unkeyed, _currency("EUR", 1)], "@odata.deltaLink": f"{API}x?$deltatoken=t1"}
        return httpx.Response(200, json=body)


@pytest.mark.asyncio
async def test_a_row_without_its_key_is_left_out_and_the_others_published(tmp_path: Path) -> None:
    """The keyless row raised out of the round: no table was polled again, the same at every restart."""
    client = RecordingClient(max_bytes=256 * 1024)
    with currencies_from(SnapshotWithAnUnkeyedRow(), client, tmp_path) as (source, store):
        assert await source.poll_once() == 1
        assert source.unkeyed == 1
        assert store.get("dataverse.delta.currency") == "t1"
    published = [e.key["isocurrencycode"] for e in sent_envelopes(client, "dualbus.currency")]
    assert published == ["EUR"]


class KeyEdited:
    """A snapshot of EUR, then a delta in which that very row (same id) has its ISO code edited to EUX, then
    one in which it is deleted."""

    async def request(self, _method: str, _path: str, **options: Any) -> httpx.Response:
        params = options.get("params") or {}
        row_id = _currency("EUR", 1)["transactioncurrencyid"]
        if params.get("$deltatoken") == "t2":
            deleted = {"@odata.context": f"{API}$metadata#transactioncurrencies/$deletedEntity", "id": row_id}
            body = {"value": [deleted], "@odata.deltaLink": f"{API}x?$deltatoken=t3"}
        elif "$deltatoken" in params:
            edited = {**_currency("EUX", 2), "transactioncurrencyid": row_id}
            body = {"value": [edited], "@odata.deltaLink": f"{API}x?$deltatoken=t2"}
        else:
            body = {"value": [_currency("EUR", 1)], "@odata.deltaLink": f"{API}x?$deltatoken=t1"}
        return httpx.Response(200, json=body)


@pytest.mark.asyncio
async def test_a_row_whose_key_changed_deletes_the_record_under_its_old_key(tmp_path: Path) -> None:
    """Only the new key was published: the record under the old one stayed on the other side for good."""
    client = RecordingClient(max_bytes=256 * 1024)
    with currencies_from(KeyEdited(), client, tmp_path) as (source, _store):
        assert await source.poll_once() == 1
        assert await source.poll_once() == 2
        # Still indexed under its new key (the old entry's removal did not undo the new one's), so that
        # its delete names it.
        assert await source.poll_once() == 1
    published = [(e.operation, e.key["isocurrencycode"]) for e in sent_envelopes(client, "dualbus.currency")]
    assert published == [
        (Operation.CREATE, "EUR"),
        (Operation.DELETE, "EUR"),
        (Operation.CREATE, "EUX"),
        (Operation.DELETE, "EUX"),
    ]


class _EmptyWhenUnchanged:
    """A snapshot of EUR; then, nothing having changed, an empty JSON object as the delta's answer."""

    def __init__(self) -> None:
        self.deltas = 0

    async def request(self, _method: str, _path: str, **options: Any) -> httpx.Response:
        if "$deltatoken" in (options.get("params") or {}):
            self.deltas += 1
            return httpx.Response(200, json={})
        body = {"value": [_currency("EUR", 1)], "@odata.deltaLink": f"{API}x?$deltatoken=t1"}
        return httpx.Response(200, json=body)


@pytest.mark.asyncio
async def test_an_empty_answer_to_a_delta_keeps_the_token(tmp_path: Path) -> None:
    """Dataverse documents an empty JSON response for a delta with no change: no delta link comes with it,
    and the producer keeps the token it holds rather than fail the table's poll."""
    api = _EmptyWhenUnchanged()
    with currencies_from(api, RecordingClient(max_bytes=256 * 1024), tmp_path) as (source, store):
        assert await source.poll_once() == 1
        assert await source.poll_once() == 0
        assert await source.poll_once() == 0
        assert (api.deltas, store.get("dataverse.delta.currency")) == (2, "t1")
