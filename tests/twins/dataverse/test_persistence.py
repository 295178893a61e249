"""With a SQLite database the twin keeps rows, versions and its change log across a restart."""

from __future__ import annotations

from pathlib import Path

from tests.twins.dataverse.support import client_for, post_batch, start


def test_rows_versions_and_delta_links_survive_a_restart(tmp_path: Path) -> None:
    """After a restart on the same database, rows read back, versions keep rising and old delta links work."""
    database = tmp_path / "dataverse.sqlite"
    with start(limits=None, database=database) as twin, client_for(twin) as client:
        client.patch("transactioncurrencies(isocurrencycode='EUR')", json={"currencyname": "Euro"})
        client.patch("transactioncurrencies(isocurrencycode='USD')", json={"currencyname": "Dollar"})
        link = client.get("transactioncurrencies", headers={"Prefer": "odata.track-changes"}).json()[
            "@odata.deltaLink"
        ]
        client.delete("transactioncurrencies(isocurrencycode='USD')")
        before = client.get("transactioncurrencies(isocurrencycode='EUR')").json()
        link_path = link.split("/api/data/v9.2/", 1)[1]

    with start(limits=None, database=database) as twin, client_for(twin) as client:
        after = client.get("transactioncurrencies(isocurrencycode='EUR')").json()
        delta = client.get(link_path).json()["value"]
        client.patch("transactioncurrencies(isocurrencycode='EUR')", json={"currencyname": "Euro 2"})
        updated = client.get("transactioncurrencies(isocurrencycode='EUR')").json()
        missing = client.get("transactioncurrencies(isocurrencycode='USD')")

    assert after == {**before, "@odata.context": after["@odata.context"]}
    assert [row.get("reason") for row in delta] == ["deleted"]
    assert updated["versionnumber"] > before["versionnumber"]
    assert missing.status_code == 404


def test_rolled_back_change_set_is_not_persisted(tmp_path: Path) -> None:
    """A change set that failed leaves nothing in the database for the next start to load."""
    database = tmp_path / "dataverse.sqlite"
    api = "/api/data/v9.2/"
    with start(limits=None, database=database) as twin, client_for(twin) as client:
        post_batch(
            client,
            [
                [
                    ("PATCH", f"{api}transactioncurrencies(isocurrencycode='EUR')", {}),
                    (
                        "PATCH",
                        f"{api}transactioncurrencies(isocurrencycode='USD')",
                        {"currencyname": "x" * 101},
                    ),
                ]
            ],
        )
    with start(limits=None, database=database) as twin, client_for(twin) as client:
        assert client.get("transactioncurrencies").json()["value"] == []
