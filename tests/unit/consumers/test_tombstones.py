"""Tombstones: deletes kept in the session's state, bounded by TTL and size, and read back after a restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest

from dualbus.consumers import ApplyResult, TargetChange, Tombstones
from dualbus.consumers import _tombstones as tombstones_module
from dualbus.consumers._sink import skip_reason
from dualbus.consumers._tombstones import tombstone_key
from dualbus.shared.errors import BusError, TransientError
from dualbus.shared.maps import load_maps

from .bus_fakes import FakeSession

TTL = timedelta(days=14)
MAPS = load_maps()


class Clock:
    """Wall time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class SlowState(FakeSession):
    """A session state whose saves take a turn of the loop each, and can be made to fail."""

    def __init__(self) -> None:
        super().__init__("s")
        self.failing = False

    async def set_state(self, state):
        await asyncio.sleep(0)
        if self.failing:
            raise BusError("the session lock was lost")
        await super().set_state(state)


@pytest.mark.asyncio
async def test_a_delete_is_remembered_across_a_restart():
    """What one holder buries, the next holder of the session loads from its state."""
    state = FakeSession("s")
    first = await Tombstones.load(state, ttl=TTL)
    await first.bury("k1", 7)
    again = await Tombstones.load(state, ttl=TTL)
    assert again.version("k1") == 7
    assert again.version("k2") is None


@pytest.mark.asyncio
async def test_the_newest_version_wins():
    """An older version never lowers a tombstone, in memory or in the saved state."""
    state = FakeSession("s")
    stones = await Tombstones.load(state, ttl=TTL)
    await stones.bury("k", 9)
    await stones.bury("k", 4)
    assert stones.version("k") == 9
    assert (await Tombstones.load(state, ttl=TTL)).version("k") == 9


@pytest.mark.asyncio
async def test_tombstones_older_than_the_ttl_are_pruned():
    """A tombstone recorded longer ago than the message TTL is dropped at the next save."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, clock=clock)
    await stones.bury("old", 1)
    clock.now += TTL.total_seconds() + 1
    await stones.bury("new", 2)
    saved = await Tombstones.load(state, ttl=TTL)
    assert (saved.version("old"), saved.version("new")) == (None, 2)


@pytest.mark.asyncio
async def test_past_the_size_cap_the_oldest_go_first():
    """The saved state stays under max_bytes by dropping the oldest tombstones."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, max_bytes=2_000, clock=clock)
    for n in range(100):
        clock.now += 1
        await stones.bury(f"key-{n:03d}", n)
    assert state.state is not None
    assert len(state.state) <= 2_000
    kept = orjson.loads(state.state)["tombstones"]
    assert "key-099" in kept
    assert "key-000" not in kept
    assert sorted(kept) == [f"key-{n:03d}" for n in range(100 - len(kept), 100)]


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", [b"not json", b'{"checkpoint": 7}', b"[1, 2]", b'{"format": 1}'])
async def test_a_state_not_saved_by_dualbus_starts_empty(raw):
    """An unreadable or foreign session state gives no tombstones rather than stopping the work."""
    stones = await Tombstones.load(FakeSession("s", raw), ttl=TTL)
    assert len(stones) == 0


@pytest.mark.asyncio
async def test_buries_side_by_side_share_saves():
    """Records of one batch burying at once are saved together, and every one of them is in the state."""
    state = SlowState()
    stones = await Tombstones.load(state, ttl=TTL)
    await asyncio.gather(*(stones.bury(f"k{n}", n) for n in range(10)))
    assert state.saves < 10
    saved = await Tombstones.load(state, ttl=TTL)
    assert [saved.version(f"k{n}") for n in range(10)] == list(range(10))


class GatedState(FakeSession):
    """A session state whose first save waits for the test's word, and fails if told to."""

    def __init__(self, *, fail_first: bool = False) -> None:
        super().__init__("s")
        self.gate = asyncio.Event()
        self.fail_first = fail_first

    async def set_state(self, state):
        if not self.gate.is_set():
            await self.gate.wait()
            if self.fail_first:
                self.fail_first = False
                raise BusError("the session lock was lost")
        await super().set_state(state)


async def _bury_behind_a_held_save(state: GatedState, count: int) -> tuple[list[object], list[int]]:
    """``count`` records bury at once while the first one's save is held; each one's outcome, and the turn
    of the loop (counted from the save's release) in which it returned."""
    stones = await Tombstones.load(state, ttl=TTL)
    turn = 0
    returned: list[int] = []

    async def bury(n: int) -> None:
        try:
            await stones.bury(f"k{n}", n)
        finally:
            returned.append(turn)

    tasks = [asyncio.create_task(bury(0))]
    for _ in range(3):
        await asyncio.sleep(0)  # the first record's save is under way (and held)
    tasks += [asyncio.create_task(bury(n)) for n in range(1, count)]
    for _ in range(3):
        await asyncio.sleep(0)  # every other record has buried, too late for that save, and waits
    state.gate.set()
    while not all(task.done() for task in tasks):
        turn += 1
        await asyncio.sleep(0)
    outcomes = [task.exception() or "saved" for task in tasks]
    return outcomes, returned


@pytest.mark.asyncio
async def test_callers_waiting_behind_a_save_go_on_together():
    """Records of one batch that wait behind a save all go on in the same turn of the loop, not one per turn
    (one by one, their writes went out in many small $batch requests)."""
    state = GatedState()
    outcomes, returned = await _bury_behind_a_held_save(state, 10)
    assert outcomes == ["saved"] * 10
    assert state.saves == 2  # the first record's, then one for the nine that came too late for it
    # The first of the nine to wake makes their save and returns with it; the other eight a turn later.
    waiters = returned[1:]
    assert len(set(waiters)) <= 2, returned
    saved = await Tombstones.load(state, ttl=TTL)
    assert [saved.version(f"k{n}") for n in range(10)] == list(range(10))


@pytest.mark.asyncio
async def test_records_burying_in_the_same_turn_share_one_save():
    """The records of a batch whose reads were answered together bury in one turn: one save carries all."""
    state = FakeSession("s")
    stones = await Tombstones.load(state, ttl=TTL)
    await asyncio.gather(*(stones.bury(f"k{n}", n) for n in range(10)))
    assert state.saves == 1
    saved = await Tombstones.load(state, ttl=TTL)
    assert [saved.version(f"k{n}") for n in range(10)] == list(range(10))


@pytest.mark.asyncio
async def test_a_failed_save_fails_its_caller_and_the_others_save_again():
    """The caller whose save failed hears why; those that waited behind it save their changes themselves."""
    state = GatedState(fail_first=True)
    outcomes, _ = await _bury_behind_a_held_save(state, 5)
    assert isinstance(outcomes[0], BusError)
    assert outcomes[1:] == ["saved"] * 4
    assert state.saves == 1  # the failed one is not counted
    saved = await Tombstones.load(state, ttl=TTL)
    assert [saved.version(f"k{n}") for n in range(5)] == list(range(5))


@pytest.mark.asyncio
async def test_a_failed_save_raises():
    """A save the bus refuses raises a dualbus error, so the caller does not settle as if it were kept."""
    state = SlowState()
    stones = await Tombstones.load(state, ttl=TTL)
    state.failing = True
    with pytest.raises(BusError):
        await stones.bury("k", 1)


@pytest.mark.asyncio
async def test_a_save_that_gets_no_answer_raises_instead_of_holding_the_session(monkeypatch):
    """The SDK can wait on a broken management link for ever; a save must give up and say so."""
    monkeypatch.setattr(tombstones_module, "_STATE_TIMEOUT_SECONDS", 0.2)
    state = SlowState()
    stones = await Tombstones.load(state, ttl=TTL)
    never = asyncio.Event()

    async def unanswered(_state: bytes | None) -> None:
        await never.wait()

    state.set_state = unanswered  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="no answer"):
        await asyncio.wait_for(stones.bury("k", 1), timeout=5.0)


def test_keys_name_map_table_and_key_case_blind():
    """A key names its map and table; both targets compare key values without regard to case."""
    assert tombstone_key("customers", "accounts", {"a": "USMF", "b": 1}) == tombstone_key(
        "customers", "Accounts", {"b": "1", "a": "usmf"}
    )
    assert tombstone_key("customers", "accounts", {"a": 1}) != tombstone_key("vendors", "accounts", {"a": 1})


@pytest.mark.parametrize(
    ("deleted", "version", "repair", "expected"),
    [
        (None, 5, False, None),
        (5, 5, False, ApplyResult.SKIPPED_STALE),
        (6, 5, False, ApplyResult.SKIPPED_STALE),
        (4, 5, False, None),
        (5, 5, True, None),
        (6, 5, True, ApplyResult.SKIPPED_STALE),
    ],
)
def test_a_missing_row_is_judged_by_its_tombstone(deleted, version, repair, expected):
    """With the row gone, a delete at least as new (newer, for a repair) makes the change stale."""
    change = TargetChange(
        table_map=MAPS["currency"],
        key={"isocurrencycode": "EUR"},
        source_version=version,
        repair=repair,
        deleted_version=deleted,
    )
    assert skip_reason(change, None, "dualbus_sourceversion") is expected


def test_a_row_that_exists_is_judged_by_its_own_version_not_the_tombstone():
    """A tombstone does not hold back a change whose row exists: the row's version decides."""
    change = TargetChange(
        table_map=MAPS["currency"], key={"isocurrencycode": "EUR"}, source_version=5, deleted_version=9
    )
    assert skip_reason(change, {"dualbus_sourceversion": 4}, "dualbus_sourceversion") is None


@pytest.mark.asyncio
async def test_each_save_spells_the_whole_state_as_orjson_would():
    """Entries kept encoded between saves give the very bytes an encoding of the whole state gives,
    through buries, newer versions and prunes."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, max_bytes=800, clock=clock)
    for n in range(60):
        clock.now += 0.0004 * n
        await stones.bury(f'k"{n % 25}é', n, deleted=n % 7 == 0)
        entries = stones._entries
        expected = {key: [version, round(at, 3)] for key, (version, at) in entries.items()}
        deleted = [key for key in entries if stones.deleted(key)]
        assert state.state == orjson.dumps(
            {
                "format": tombstones_module._FORMAT,
                "tombstones": expected,
                "deleted": deleted,
            }
        )
    assert 0 < len(stones) < 25
    assert len(stones._encoded) == len(stones)


@pytest.mark.asyncio
async def test_a_record_buried_again_is_the_newest_and_a_loaded_state_keeps_its_age_order():
    """Past the cap the least recently recorded go first: a record buried again outlives those recorded
    after its first burial, and a state loaded back prunes in the order of its entries' times."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, max_bytes=1_000, clock=clock)
    for n in range(12):
        clock.now += 1
        await stones.bury(f"key-{n:03d}", n)
    clock.now += 1
    await stones.bury("key-000", 50)
    for n in range(12, 40):
        clock.now += 1
        await stones.bury(f"key-{n:03d}", n)
        if stones.version("key-000") is None:
            break
    kept = orjson.loads(state.state)["tombstones"]
    # key-000 went only after every key first buried before its second burial had gone.
    assert not any(f"key-{n:03d}" in kept for n in range(1, 12))
    loaded = Tombstones(
        FakeSession("t"),
        ttl=TTL,
        max_bytes=1_000,
        clock=clock,
        entries=dict(reversed([(key, (version, at)) for key, (version, at) in kept.items()])),
    )
    await loaded.bury("key-999", 999)
    newest = max(kept, key=lambda key: kept[key][1])
    assert loaded.version(newest) is not None
    assert min(kept, key=lambda key: kept[key][1]) not in orjson.loads(loaded._state.state)["tombstones"]


@pytest.mark.asyncio
async def test_a_tombstone_whose_save_failed_is_saved_when_it_is_buried_again():
    """A change tried again after its version's save failed buries the same version again: held already,
    it is saved this time, before the caller goes on to write."""

    class FailingOnce(FakeSession):
        failed = False

        async def set_state(self, state):
            if not self.failed:
                self.failed = True
                raise TransientError("no answer")
            await super().set_state(state)

    state = FailingOnce("s")
    stones = Tombstones(state, ttl=TTL)
    with pytest.raises(TransientError):
        await stones.bury("k", 2)
    assert stones.unsaved
    await stones.bury("k", 2)
    assert not stones.unsaved
    assert orjson.loads(state.state)["tombstones"]["k"][0] == 2


@pytest.mark.asyncio
async def test_past_the_size_cap_applied_versions_go_before_deletes():
    """A delete's tombstone outlives the entries of changes applied after it, however many: they go first
    past the cap, so an old change of the deleted record delivered again still finds it."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, max_bytes=2_000, clock=clock)
    await stones.bury("gone", 5, deleted=True)
    for n in range(200):
        clock.now += 1
        await stones.bury(f"key-{n:03d}", n)
    assert stones.version("gone") == 5
    assert stones.version("key-000") is None
    assert stones.version("key-199") == 199
    assert len(state.state) <= 2_000
    loaded = await Tombstones.load(state, ttl=TTL, max_bytes=2_000)
    assert (loaded.version("gone"), loaded.deleted("gone")) == (5, True)
    assert not loaded.deleted("key-199")


@pytest.mark.asyncio
async def test_deletes_alone_over_the_cap_go_oldest_first_and_the_ttl_takes_them_too():
    """With nothing but deletes past the cap, the oldest delete goes; past the TTL a delete goes as well."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, max_bytes=1_000, clock=clock)
    for n in range(40):
        clock.now += 1
        await stones.bury(f"gone-{n:03d}", n, deleted=True)
    assert stones.version("gone-000") is None
    assert stones.version("gone-039") == 39
    assert len(state.state) <= 1_000
    clock.now += TTL.total_seconds() + 1
    await stones.bury("new", 1)
    assert [key for key in ("gone-039", "new") if stones.version(key) is not None] == ["new"]


@pytest.mark.asyncio
async def test_a_record_written_again_after_its_delete_is_an_applied_change_again():
    """A newer create of a deleted record turns its entry back into an applied change's; an older
    applied version leaves it a delete's."""
    stones = Tombstones(FakeSession("s"), ttl=TTL)
    await stones.bury("k", 3, deleted=True)
    await stones.bury("k", 2)
    assert (stones.version("k"), stones.deleted("k")) == (3, True)
    await stones.bury("k", 4)
    assert (stones.version("k"), stones.deleted("k")) == (4, False)


@pytest.mark.asyncio
async def test_a_state_saved_before_deletes_were_listed_apart_loads_as_applied_entries():
    """A state of the earlier format (no "deleted" list) loads every entry, as applied changes'; an
    earlier release reading a state of this one finds its entries where it looked for them."""
    old = orjson.dumps({"format": tombstones_module._FORMAT, "tombstones": {"k": [7, 1_700_000_000.0]}})
    loaded = await Tombstones.load(FakeSession("s", old), ttl=TTL)
    assert (loaded.version("k"), loaded.deleted("k")) == (7, False)
    stones = Tombstones(FakeSession("t"), ttl=TTL)
    await stones.bury("k", 7, deleted=True)
    body = orjson.loads(stones._state.state)
    assert {k: v for k, (v, _at) in body["tombstones"].items()} == {"k": 7}


@pytest.mark.asyncio
@pytest.mark.parametrize("deleted", [3, None, {"k": 1}])
async def test_an_unreadable_list_of_deletes_keeps_the_entries_as_applied(deleted):
    """A mangled list of deletes loses no readable entry: every one is kept, as an applied change's."""
    raw = orjson.dumps(
        {"format": tombstones_module._FORMAT, "tombstones": {"k": [7, 1.0]}, "deleted": deleted}
    )
    loaded = await Tombstones.load(FakeSession("s", raw), ttl=TTL)
    assert (loaded.version("k"), loaded.deleted("k")) == (7, False)


@pytest.mark.asyncio
async def test_deletes_filling_the_cap_leave_room_for_an_update_saved_before_its_write():
    """However many deletes the state holds, an update's version saved before its write is in the saved
    state: the deletes keep at most their share of the cap, the oldest of them going past it."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, max_bytes=2_000, clock=clock)
    for n in range(60):
        clock.now += 1
        await stones.bury(f"gone-{n:03d}", n, deleted=True)
    for n in range(30):
        clock.now += 1
        key = f"updated-record-with-a-longer-key-{n:02d}"
        await stones.bury(key, 100 + n)
        assert key in orjson.loads(state.state)["tombstones"]
    assert len(state.state) <= 2_000
    assert stones.version("gone-059") == 59
    assert stones.version("gone-000") is None


@pytest.mark.asyncio
async def test_the_size_kept_is_the_size_the_state_is_counted_at():
    """The running size equals one counted afresh from the entries, through buries, lane moves, prunes
    and a reload, so that the cap prunes neither too little nor too much."""
    clock, state = Clock(), FakeSession("s")
    stones = Tombstones(state, ttl=TTL, max_bytes=3_000, clock=clock)

    def counted(t: Tombstones) -> tuple[int, int]:
        fresh = Tombstones(FakeSession("x"), ttl=TTL, max_bytes=10**9, clock=clock)
        for key in t._entries:
            fresh._put(key, t._entries[key], deleted=t.deleted(key))
        return fresh._size, fresh._deletes_size

    for n in range(300):
        clock.now += 1
        await stones.bury(f"k-{n % 70}", n, deleted=n % 3 == 0)
        assert (stones._size, stones._deletes_size) == counted(stones)
    assert set(stones._applied).isdisjoint(stones._deletes)
    assert set(stones._applied) | set(stones._deletes) == set(stones._entries)
    loaded = await Tombstones.load(state, ttl=TTL, max_bytes=3_000)
    assert (loaded._size, loaded._deletes_size) == counted(stones)
    assert list(loaded._deletes) == list(stones._deletes)


@pytest.mark.asyncio
async def test_a_delete_behind_a_newer_recorded_version_moves_the_record_among_the_deletes():
    """A delete that removed the row though a newer version was recorded (an update saved before a write
    the delete then undid) keeps that version and counts among the deletes, saved."""
    state = FakeSession("s")
    stones = Tombstones(state, ttl=TTL)
    await stones.bury("k", 9)
    await stones.bury("k", 8, deleted=True)
    assert (stones.version("k"), stones.deleted("k")) == (9, True)
    assert orjson.loads(state.state)["deleted"] == ["k"]
