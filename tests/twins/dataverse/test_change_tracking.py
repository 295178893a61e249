"""Change tracking: a snapshot with a delta link, then only what changed since, deletes included.

See https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from dualbus.sandbox.dataverse import create_app
from dualbus.sandbox.http_server import serve_in_thread
from dualbus.sandbox.identity import TokenIssuer
from tests.twins.dataverse.support import CLIENTS, client_for, start


def _track(client: httpx.Client) -> httpx.Response:
    return client.get(
        "transactioncurrencies",
        params={"$select": "isocurrencycode"},
        headers={"Prefer": "odata.track-changes"},
    )


def test_delta_link_returns_changes_and_deletes_since_the_token(client: httpx.Client) -> None:
    """Following the delta link yields created/updated rows in their newest state and deleted rows' ids."""
    for code in ("EUR", "USD", "GBP"):
        client.patch(f"transactioncurrencies(isocurrencycode='{code}')", json={"currencyname": code})
    snapshot = _track(client)
    assert snapshot.headers["Preference-Applied"] == "odata.track-changes"
    assert len(snapshot.json()["value"]) == 3
    gbp = client.get("transactioncurrencies(isocurrencycode='GBP')").json()["transactioncurrencyid"]

    client.patch("transactioncurrencies(isocurrencycode='EUR')", json={"currencyname": "Euro"})
    client.patch("transactioncurrencies(isocurrencycode='EUR')", json={"currencyname": "Euro!"})
    client.patch("transactioncurrencies(isocurrencycode='CHF')", json={"currencyname": "Franc"})
    client.delete(f"transactioncurrencies({gbp})")

    delta = client.get(snapshot.json()["@odata.deltaLink"]).json()
    changed = {row["isocurrencycode"] for row in delta["value"] if "reason" not in row}
    deleted = [row for row in delta["value"] if row.get("reason") == "deleted"]
    assert changed == {"EUR", "CHF"}
    assert [row["id"] for row in deleted] == [gbp]
    assert deleted[0]["@odata.context"].endswith("$metadata#transactioncurrencies/$deletedEntity")
    assert delta["@odata.context"].endswith("/$delta")

    # The next link starts from here: nothing has changed since.
    assert client.get(delta["@odata.deltaLink"]).json()["value"] == []


def test_unknown_delta_token_asks_for_a_full_sync(client: httpx.Client) -> None:
    """A delta token the twin never issued is refused with ExpiredVersionStamp, so the client re-snapshots."""
    response = client.get("transactioncurrencies", params={"$deltatoken": "999999!2020-01-01T00:00:00Z"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044352"


def test_filter_is_refused_with_track_changes(client: httpx.Client) -> None:
    """$filter is not supported together with Prefer: odata.track-changes, as documented."""
    response = client.get(
        "transactioncurrencies",
        params={"$filter": "currencyname eq 'x'"},
        headers={"Prefer": "odata.track-changes"},
    )
    assert response.status_code == 400
    assert "isn't supported when Change Tracking is enabled" in response.json()["error"]["message"]


def test_expired_delta_token_after_retention() -> None:
    """Once deletions older than the retention are forgotten, a token from before them is expired."""
    now = [1_000_000.0]
    with _client_on_a_clock(now) as client:
        client.patch("transactioncurrencies(isocurrencycode='EUR')", json={})
        link = _track(client).json()["@odata.deltaLink"]
        client.delete("transactioncurrencies(isocurrencycode='EUR')")
        assert client.get(link).status_code == 200  # still within the retention
        now[0] += 120
        expired = client.get(link)
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "0x80044352"


def test_a_token_older_than_the_retention_is_expired_though_nothing_was_deleted() -> None:
    """Changes are returned only while the last token is within the retention (seven days by default): an
    older token is expired even on a table where nothing was deleted, and a fresh one from the same
    table is still honoured."""
    now = [1_000_000.0]
    with _client_on_a_clock(now) as client:
        client.patch("transactioncurrencies(isocurrencycode='EUR')", json={})
        old_link = _track(client).json()["@odata.deltaLink"]
        now[0] += 45
        fresh_link = client.get(old_link).json()["@odata.deltaLink"]
        client.patch("transactioncurrencies(isocurrencycode='EUR')", json={"currencyname": "Euro"})
        now[0] += 30
        expired = client.get(old_link)
        fresh = client.get(fresh_link)
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "0x80044352"
    assert fresh.status_code == 200
    assert [row["isocurrencycode"] for row in fresh.json()["value"]] == ["EUR"]


def test_tracked_snapshot_pages_then_gives_the_delta_link(client: httpx.Client) -> None:
    """A tracked snapshot honours odata.maxpagesize; only its last page carries the delta link."""
    for code in ("AAA", "BBB", "CCC"):
        client.patch(f"transactioncurrencies(isocurrencycode='{code}')", json={})
    headers = {"Prefer": "odata.track-changes, odata.maxpagesize=2"}
    first = client.get("transactioncurrencies", headers=headers).json()
    client.patch("transactioncurrencies(isocurrencycode='DDD')", json={})  # written while paging
    second = client.get(first["@odata.nextLink"], headers=headers).json()
    assert "@odata.deltaLink" not in first
    assert len(first["value"]) == 2
    assert "@odata.nextLink" not in second
    delta = client.get(second["@odata.deltaLink"]).json()["value"]
    # The row written during paging comes through the delta link, pinned to the snapshot's start.
    assert "DDD" in {row["isocurrencycode"] for row in delta}


def test_a_delta_is_paged_and_only_its_last_page_gives_the_delta_link(client: httpx.Client) -> None:
    """Changes since a token are paged as any collection is (odata.maxpagesize, else 5,000 a page): a page
    with more to come carries @odata.nextLink, the last one the next @odata.deltaLink. Changes and deletes
    are listed in that order, and a change made while paging comes through the next delta link."""
    for code in ("AAA", "BBB", "CCC"):
        client.patch(f"transactioncurrencies(isocurrencycode='{code}')", json={})
    link = _track(client).json()["@odata.deltaLink"]
    for code in ("AAA", "BBB"):
        client.patch(f"transactioncurrencies(isocurrencycode='{code}')", json={"currencyname": code})
    client.delete("transactioncurrencies(isocurrencycode='CCC')")

    headers = {"Prefer": "odata.maxpagesize=2"}
    first = client.get(link, headers=headers)
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=2"
    assert "@odata.deltaLink" not in first.json()
    assert [row["isocurrencycode"] for row in first.json()["value"]] == ["AAA", "BBB"]
    client.patch("transactioncurrencies(isocurrencycode='AAA')", json={"currencyname": "again"})
    second = client.get(first.json()["@odata.nextLink"], headers=headers).json()
    assert "@odata.nextLink" not in second
    assert [row["reason"] for row in second["value"]] == ["deleted"]
    assert second["@odata.context"].endswith("/$delta")

    after = client.get(second["@odata.deltaLink"]).json()["value"]
    assert [row["isocurrencycode"] for row in after] == ["AAA"]


def test_a_row_deleted_while_a_snapshot_is_paged_shifts_no_other_row_out_of_it(client: httpx.Client) -> None:
    """A page starts after the last row served: a row of an earlier page deleted meanwhile leaves every
    row still to come in the snapshot (and its own delete in the next delta)."""
    for code in ("AAA", "BBB", "CCC", "DDD"):
        client.patch(f"transactioncurrencies(isocurrencycode='{code}')", json={})
    headers = {"Prefer": "odata.track-changes,odata.maxpagesize=2"}
    first = client.get("transactioncurrencies", params={"$select": "isocurrencycode"}, headers=headers).json()
    served = [row["isocurrencycode"] for row in first["value"]]
    client.delete(f"transactioncurrencies({first['value'][0]['transactioncurrencyid']})")
    second = client.get(first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"}).json()
    served += [row["isocurrencycode"] for row in second["value"]]
    assert sorted(served) == ["AAA", "BBB", "CCC", "DDD"]
    delta = client.get(second["@odata.deltaLink"]).json()["value"]
    assert [row.get("reason") for row in delta] == ["deleted"]


def test_a_table_without_change_tracking_refuses_to_track_it() -> None:
    """A table whose change tracking is not enabled answers ChangeTrackingNotEnabledForEntity (0x80072491),
    for a tracked snapshot and for a delta token alike; the other tables are tracked as before."""
    with (
        start(limits=None, untracked_tables=frozenset({"transactioncurrencies"})) as twin,
        client_for(twin) as client,
    ):
        snapshot = _track(client)
        delta = client.get("transactioncurrencies", params={"$deltatoken": "1!2020-01-01T00:00:00Z"})
        plain = client.get("transactioncurrencies", params={"$select": "isocurrencycode"})
        tracked = client.get("uoms", headers={"Prefer": "odata.track-changes"})
    for refused in (snapshot, delta):
        assert refused.status_code == 400
        assert refused.json()["error"] == {
            "code": "0x80072491",
            "message": "Entity transactioncurrency isn't enabled for change tracking.",
        }
    assert plain.status_code == 200
    assert tracked.status_code == 200
    assert "@odata.deltaLink" in tracked.json()


@contextlib.contextmanager
def _client_on_a_clock(now: list[float]) -> Iterator[httpx.Client]:
    """A client of a twin whose clock reads ``now[0]`` and which keeps changes for 60 s."""
    issuer = TokenIssuer(signing_key="k" * 32, clients=CLIENTS)
    app = create_app(
        issuer=issuer,
        audience="https://dv.test",
        limits=None,
        change_retention_seconds=60,
        clock=lambda: now[0],
    )
    with serve_in_thread(app) as handle:
        token = issuer.issue(
            client_id="dualbus", client_secret=CLIENTS["dualbus"], scope="https://dv.test/.default"
        )
        with httpx.Client(
            base_url=f"{handle.url}/api/data/v9.2/",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        ) as client:
            yield client
