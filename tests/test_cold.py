"""The cold tier: idle accounts held compressed are invisible to detection, checkpoints and restore."""

from __future__ import annotations

import dataclasses
import functools
import zlib

import orjson
import pytest

from pipeline import cold as cold_module
from pipeline.account import AccountState
from pipeline.contract import Event
from pipeline.detection import DetectionConfig
from pipeline.engine import Engine
from pipeline.records import FeedbackRow
from pipeline.simulate import SimConfig, generate
from pipeline.validation import event_from_dict

WARM = dataclasses.replace(DetectionConfig(), freeze_idle_ms=0)
COLD = dataclasses.replace(DetectionConfig(), freeze_idle_ms=600_000)
DIRTY = AccountState.__slots__.index("dirty")
T0 = 1_717_200_000_000


@functools.cache
def events() -> tuple[Event, ...]:
    return tuple(event_from_dict(d) for d in generate(SimConfig(seed=11, accounts=120, hours=4.0)))


def _run(engine: Engine, evs: tuple[Event, ...] | list[Event], first: int = 0, discard: bool = False) -> list[list]:
    """Outputs in batches of 300 events (``discard``: no changelog, as offline)."""
    out = []
    for start in range(0, len(evs), 300):
        for i, ev in enumerate(evs[start : start + 300], first + start):
            engine.add(ev, 0, i)
        o = engine.take_outputs()
        out.append([o.alerts, o.aggregates, o.scores, o.summaries])
        if discard:
            engine.discard_changes()
    return out


def _states(engine: Engine) -> dict[str, list]:
    """Every account's changelog form (frozen ones as frozen), without the checkpoint flag."""
    sh = engine.shards[0]
    dumps = {a: st.dump() for a, st in sh.accounts.items()}
    for a in sh.cold.blobs:
        dumps[a] = orjson.loads(sh.cold.record(a) or b"")  # the record is the dump
    for d in dumps.values():
        d[DIRTY] = False
    return dumps


def test_freezing_changes_no_output_and_no_state() -> None:
    warm, cold, offline = Engine(WARM), Engine(COLD), Engine(COLD)
    ref = _run(warm, events())
    assert _run(cold, events()) == ref  # the worker's way: changed accounts freeze before their checkpoint
    assert _run(offline, events(), discard=True) == ref
    for e in (cold, offline):
        held = e.accounts_frozen()
        assert e.frozen > held > 0  # froze, and some of them came back
        assert e.accounts_tracked() == warm.accounts_tracked()
        assert _states(e) == _states(warm)
    assert sum(len(r[0]) for r in ref) > 0  # the comparison covers alerts


def test_checkpoint_and_restore_carry_frozen_accounts() -> None:
    evs = events()
    half = len(evs) // 2
    ref = Engine(WARM)
    _run(ref, evs[:half])
    tracked = ref.accounts_tracked()
    ref_tail = _run(ref, evs[half:], half)
    a = Engine(COLD)
    _run(a, evs[:half])
    sh = a.shards[0]
    frozen_changed = {a for a in sh.dirty if a in sh.cold}
    assert frozen_changed  # frozen since the last checkpoint: their record comes from the cold tier
    snaps = a.dirty_snapshots(0)
    assert frozen_changed <= {k for k, _ in snaps}
    b = Engine(COLD)
    for key, blob in snaps:
        b.restore(0, key, blob)
    assert b.accounts_tracked() == a.accounts_tracked() == tracked
    bsh = b.shards[0]
    assert b.accounts_frozen() == len(bsh.cold) > len(sh.cold)  # restored frozen unless an incident or due
    assert not any(st.incident is None and st.pending < COLD.force_min_events for st in bsh.accounts.values())
    assert set(bsh.pending) | bsh.cold.pending == set(sh.pending) | sh.cold.pending  # pending accounts listed
    assert _run(b, evs[half:], half) == ref_tail == _run(a, evs[half:], half)


def test_an_account_restored_frozen_takes_earlier_verdicts_at_its_thaw() -> None:
    a = Engine(COLD)
    a.add(_one("x", T0), 0, 0)
    snaps = a.dirty_snapshots(0)
    b = Engine(COLD)
    b.apply_feedback(FeedbackRow("allowlist", account_id="x"))  # the feedback topic, replayed at start
    for key, blob in snaps:
        b.restore(0, key, blob)
    assert "x" in b.shards[0].cold
    b.add(_one("x", T0 + 1000), 0, 1)
    assert b.shards[0].accounts["x"].allowlisted


def _one(account: str, ts: int, i: int = 0) -> Event:
    return Event(f"{account}-{ts}-{i}", ts, account, "m", 200, 10, 20, account_created_ms=T0, ip="10.1.2.3")


def test_frozen_accounts_take_feedback_and_are_evicted() -> None:
    cfg = dataclasses.replace(COLD, idle_evict_ms=3 * 3_600_000)
    e = Engine(cfg)
    e.add(_one("x", T0), 0, 0)
    e.add(_one("y", T0 + 1_200_000), 0, 1)  # 20 min later: x idle past the freezing horizon
    assert "x" in e.shards[0].cold and "x" not in e.shards[0].accounts
    e.apply_feedback(FeedbackRow("allowlist", account_id="x"))
    assert e.shards[0].accounts["x"].allowlisted  # thawed to take the verdict
    e.add(_one("y", T0 + 2_400_000), 0, 2)
    assert "x" in e.shards[0].cold and e.accounts_tracked() == 2
    e.dirty_snapshots(0)
    e.add(_one("z", T0 + 4 * 3_600_000), 0, 3)  # x and y idle for 3+ h: evicted from the cold tier
    assert e.accounts_tracked() == 1 and e.evicted == 2
    tombstones = {k for k, blob in e.dirty_snapshots(0) if blob == b""}
    assert tombstones == {"x", "y"}


def test_a_frozen_account_is_small() -> None:
    e = Engine(COLD)
    _run(e, events(), discard=True)
    cold = e.shards[0].cold
    json = sum(len(cold.record(a) or b"") for a in cold.blobs)
    assert cold.nbytes() < json / 2 and cold.nbytes() / len(cold) < 1500  # objects: ~3.6 KB (memory_breakdown.py)


def test_a_frozen_record_is_primed_and_checked() -> None:
    """The blobs are raw deflate primed with a new account's record (``cold._ZDICT``): smaller than
    the same raw deflate without the dictionary, and a truncated one raises instead of loading."""
    e = Engine(COLD)
    _run(e, events(), discard=True)
    cold = e.shards[0].cold
    records = {a: cold.record(a) or b"" for a in cold.blobs}

    def unprimed(record: bytes) -> bytes:  # the blobs' settings without the dictionary
        c = zlib.compressobj(1, zlib.DEFLATED, cold_module._WBITS, cold_module._MEM_LEVEL)
        return c.compress(record) + c.flush()

    plain = sum(len(unprimed(r)) for r in records.values())
    assert cold.nbytes() - 8 * len(cold) < plain
    a, blob = next(iter(cold.blobs.items()))
    cold.blobs[a] = blob[:-4]
    with pytest.raises(ValueError, match="truncated"):
        cold.thaw(a)
    assert cold_module._decompress(memoryview(blob)[8:]) == records[a]


def test_an_account_frozen_while_queued_and_thawed_by_a_replay_is_still_checkpointed() -> None:
    """The checkpoint queue holds account ids, not states: an account changed since the last
    checkpoint and then frozen is not kept warm by the queue, and if a redelivered message (nothing
    new to count) thaws it before the checkpoint, the checkpoint still writes it: a restore holds
    every event it counted."""
    e = Engine(COLD)
    e.add(_one("a", T0), 0, 0)
    records = dict(e.dirty_snapshots(0))
    e.add(_one("a", T0 + 2_000, 1), 0, 1)  # changed since that checkpoint: queued
    e.add(_one("b", T0 + 3_600_000), 0, 2)  # an hour later: the sweep freezes "a"
    sh = e.shards[0]
    assert "a" in sh.cold and "a" not in sh.accounts and "a" in sh.dirty
    e.add(_one("a", T0 + 2_000, 1), 0, 1)  # the same offset redelivered: thaws "a", counts nothing
    assert "a" in sh.accounts and e.replayed == 1
    later = dict(e.dirty_snapshots(0))
    assert "a" in later
    b = Engine(COLD)
    for key, blob in {**records, **later}.items():
        b.restore(0, key, blob)
    bsh = b.shards[0]
    held = bsh.accounts.get("a") or bsh.thaw("a")
    assert held is not None and held.events == 2
