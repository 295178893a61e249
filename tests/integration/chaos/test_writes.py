"""The write-log judge finds a version applied twice and a change that never arrived (and nothing else)."""

from __future__ import annotations

from typing import Any

from tests.integration.chaos.writes import Writers, judge

WRITERS = Writers(
    dualbus_fo="dualbus", dualbus_dataverse="dv-dualbus", user_fo="user", user_dataverse="dv-user"
)
COMPANY = {"c-guid": "USMF"}
_sequence = iter(range(1, 1000))


def fo(
    writer: str, *, version: int | None = None, time_us: int = 0, fields=("CustomerGroupId",)
) -> dict[str, Any]:
    key = {"dataAreaId": "usmf", "CustomerAccount": "US-001"}
    return {
        "sequence": next(_sequence),
        "table": "CustomersV3",
        "key": key,
        "operation": "upsert",
        "writer": writer,
        "version": version,
        "row_version": None,
        "time_us": time_us,
        "fields": list(fields),
    }


def dv(writer: str, *, version: int | None = None, row_version: int = 0, fields=("name",)) -> dict[str, Any]:
    key = {"accountid": "a-1", "_msdyn_company_value": "c-guid", "accountnumber": "US-001"}
    return {
        "sequence": next(_sequence),
        "table": "accounts",
        "key": key,
        "operation": "upsert",
        "writer": writer,
        "version": version,
        "row_version": row_version,
        "time_us": 0,
        "fields": list(fields),
    }


def test_a_clean_exchange_both_ways_is_judged_clean() -> None:
    fo_log = [fo("user", time_us=100), fo("dualbus", version=7)]
    dv_log = [dv("dv-dualbus", version=150), dv("dv-user", row_version=7)]
    verdict = judge(fo_log, sorted(dv_log, key=lambda e: e["sequence"]), WRITERS, COMPANY)
    assert (verdict.lost, verdict.duplicated) == (0, 0)


def test_a_version_written_twice_is_a_duplicate() -> None:
    verdict = judge([], [dv("dv-dualbus", version=150), dv("dv-dualbus", version=150)], WRITERS, COMPANY)
    assert (verdict.lost, verdict.duplicated) == (0, 1)


def test_changes_that_never_arrived_are_lost_both_ways_but_an_unmapped_field_travels_nowhere() -> None:
    lost_to_dataverse = judge([fo("user", time_us=100)], [dv("dv-dualbus", version=99)], WRITERS, COMPANY)
    assert lost_to_dataverse.lost == 1
    lost_to_fo = judge([fo("dualbus", version=5)], [dv("dv-user", row_version=8)], WRITERS, COMPANY)
    assert lost_to_fo.lost == 1
    unmapped = judge([fo("user", time_us=100, fields=("NoSuchField",))], [], WRITERS, COMPANY)
    assert unmapped.lost == 0
