"""The write-log judge finds a version applied twice and a change that never arrived (and nothing else)."""

from __future__ import annotations

from itertools import count
from typing import Any

from tests.integration.chaos.writes import Writers, judge

WRITERS = Writers(
    dualbus_fo="dualbus", dualbus_dataverse="dv-dualbus", user_fo="user", user_dataverse="dv-user"
)
COMPANY = {"c-guid": "USMF"}
_sequence = count(1)


def fo(
    writer: str, *, version: int | None = None, time_us: int = 0, group: str | None = "G1"
) -> dict[str, Any]:
    """A write of customer US-001 in F&O's log, setting its group."""
    return {
        "sequence": next(_sequence),
        "table": "CustomersV3",
        "key": {"dataAreaId": "usmf", "CustomerAccount": "US-001"},
        "operation": "upsert",
        "writer": writer,
        "version": version,
        "row_version": None,
        "time_us": time_us,
        "fields": {"CustomerGroupId": group},
    }


def dv(writer: str, *, version: int | None = None, row_version: int = 0, name: str = "N1") -> dict[str, Any]:
    """A write of the same customer's account in Dataverse's log, setting its name."""
    return {
        "sequence": next(_sequence),
        "table": "accounts",
        "key": {"accountid": "a-1", "_msdyn_company_value": "c-guid", "accountnumber": "US-001"},
        "operation": "upsert",
        "writer": writer,
        "version": version,
        "row_version": row_version,
        "time_us": 0,
        "fields": {"name": name},
    }


def test_a_clean_exchange_both_ways_is_judged_clean() -> None:
    fo_log = [fo("user", time_us=100), fo("dualbus", version=7)]
    dv_log = [dv("dv-dualbus", version=150), dv("dv-user", row_version=7, name="N2")]
    fo_log[1]["sequence"], dv_log[1]["sequence"] = next(_sequence), next(_sequence)
    verdict = judge(fo_log, dv_log, WRITERS, COMPANY)
    assert (verdict.lost, verdict.duplicated) == (0, 0)


def test_a_version_written_twice_is_a_duplicate() -> None:
    verdict = judge([], [dv("dv-dualbus", version=150), dv("dv-dualbus", version=150)], WRITERS, COMPANY)
    assert (verdict.lost, verdict.duplicated) == (0, 1)


def test_changes_that_never_arrived_are_lost_both_ways() -> None:
    lost_to_dataverse = judge([fo("user", time_us=100)], [dv("dv-dualbus", version=99)], WRITERS, COMPANY)
    assert lost_to_dataverse.lost == 1
    lost_to_fo = judge([fo("dualbus", version=5)], [dv("dv-user", row_version=8)], WRITERS, COMPANY)
    assert lost_to_fo.lost == 1


def test_a_change_undone_before_it_was_read_travels_nowhere_and_is_no_loss() -> None:
    undone = [
        fo("user", time_us=50, group="G1"),
        fo("user", time_us=100, group="G2"),
        fo("user", time_us=200),
    ]
    assert judge(undone, [dv("dv-dualbus", version=60)], WRITERS, COMPANY).lost == 0
    assert judge(undone[:2], [dv("dv-dualbus", version=60)], WRITERS, COMPANY).lost == 1
