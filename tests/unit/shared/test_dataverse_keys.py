"""The check of the alternate keys a consumer towards Dataverse addresses rows by, on scripted answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dualbus.shared.dataverse_keys import KeyGap, key_gaps, keys_written
from dualbus.shared.errors import ConfigError, TransientError
from dualbus.shared.http import Response
from dualbus.shared.maps import load_maps

ROOT = "api/data/v9.2"
ACCOUNT_KEY = frozenset({"msdyn_company", "accountnumber"})


class _Definitions:
    """Answers each table's keys as scripted (a table not scripted: 404); records the paths asked."""

    def __init__(self, keys: dict[str, list[dict[str, Any]]], status: int = 200) -> None:
        self.keys = keys
        self.status = status
        self.asked: list[tuple[str, dict[str, str] | None]] = []

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None) -> Response:
        assert method == "GET"
        self.asked.append((path, params))
        table = path.removeprefix(f"{ROOT}/EntityDefinitions(LogicalName='").removesuffix("')/Keys")
        request = httpx.Request(method, "https://org.example")
        if table not in self.keys:
            return httpx.Response(404, json={"error": {"code": "0x8006088a"}}, request=request)
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": "no"}}, request=request)
        return httpx.Response(200, json={"value": self.keys[table]}, request=request)


def _key(columns: frozenset[str], status: str) -> dict[str, Any]:
    return {
        "MetadataId": "00000000-0000-0000-0000-000000000001",
        "KeyAttributes": sorted(columns),
        "EntityKeyIndexStatus": status,
    }


def test_the_keys_written_are_each_maps_dataverse_key_by_table() -> None:
    wanted = keys_written(load_maps(), "customer")
    assert wanted["account"] == {ACCOUNT_KEY}
    assert wanted["contact"] == {frozenset({"msdyn_company", "msdyn_contactpersonid"})}
    assert "msdyn_vendor" not in wanted  # another area's


@pytest.mark.asyncio
async def test_an_active_key_of_the_same_columns_will_do_whatever_their_order() -> None:
    api = _Definitions({"account": [_key(frozenset({"name"}), "Active"), _key(ACCOUNT_KEY, "Active")]})
    assert await key_gaps(api, {"account": [ACCOUNT_KEY]}, root=ROOT) == []
    assert api.asked == [
        (
            f"{ROOT}/EntityDefinitions(LogicalName='account')/Keys",
            {"$select": "KeyAttributes,EntityKeyIndexStatus"},
        )
    ]


@pytest.mark.asyncio
async def test_a_missing_key_and_a_failed_one_are_named() -> None:
    groups = frozenset({"msdyn_company", "msdyn_groupid"})
    api = _Definitions(
        {
            "account": [_key(frozenset({"accountnumber"}), "Active")],  # a key, but not of the map's columns
            "msdyn_customergroup": [_key(groups, "Failed")],
        }
    )
    gaps = await key_gaps(api, {"account": [ACCOUNT_KEY], "msdyn_customergroup": [groups]}, root=ROOT)
    assert gaps == [
        KeyGap("account", ("accountnumber", "msdyn_company")),
        KeyGap("msdyn_customergroup", ("msdyn_company", "msdyn_groupid"), "Failed"),
    ]
    assert str(gaps[0]) == "account has no alternate key of (accountnumber, msdyn_company)"
    assert str(gaps[1]) == "msdyn_customergroup's alternate key of (msdyn_company, msdyn_groupid) is Failed"


@pytest.mark.asyncio
@pytest.mark.parametrize("status", ["Pending", "InProgress"])
async def test_a_key_whose_index_is_being_built_is_asked_again_later(status: str) -> None:
    api = _Definitions({"account": [_key(ACCOUNT_KEY, status)]})
    with pytest.raises(TransientError, match=status):
        await key_gaps(api, {"account": [ACCOUNT_KEY]}, root=ROOT)


@pytest.mark.asyncio
async def test_a_table_dataverse_does_not_know_is_left_to_the_check_of_its_columns() -> None:
    assert await key_gaps(_Definitions({}), {"account": [ACCOUNT_KEY]}, root=ROOT) == []


@pytest.mark.asyncio
async def test_an_answer_the_check_cannot_read_stops_it_rather_than_pass_for_all_there() -> None:
    with pytest.raises(ConfigError, match="answered 403"):
        await key_gaps(_Definitions({"account": []}, status=403), {"account": [ACCOUNT_KEY]}, root=ROOT)
    unreadable = _Definitions({"account": [{"KeyAttributes": ["accountnumber"]}]})  # no status
    with pytest.raises(ConfigError, match="cannot read"):
        await key_gaps(unreadable, {"account": [ACCOUNT_KEY]}, root=ROOT)
