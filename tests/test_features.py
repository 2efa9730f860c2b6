"""Sketches and feature maths."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import orjson
import pytest

from pipeline.account import COT, EV, OWN0, AccountState
from pipeline.features import NAMES, NF, feature_vector, fold
from pipeline.sketches import RecentIds, SimhashNovelty, stable_hash, unpack
from pipeline.topk import DistinctSketch, HeavyHitters, entropy


def test_recent_ids_ring_forgets_oldest() -> None:
    """A slow account (its ids span more than GROW_MS): the ring keeps its size and forgets the oldest."""
    r = RecentIds(4)
    hs = [stable_hash(f"e{i}") for i in range(5)]
    assert not any(r.seen_or_add(h, i * 60_000) for i, h in enumerate(hs))
    assert r.seen_or_add(hs[4], 300_000) and not r.seen_or_add(hs[0], 360_000)
    assert r.n == 4


def test_recent_ids_grow_for_a_fast_account_and_come_back_from_a_dump() -> None:
    """Ids arriving faster than GROW_MS per ring: the ring doubles up to MAX, so a retry a few seconds
    later is caught; beyond MAX ids it forgets the oldest again; a dump and load keep all of it."""
    r = RecentIds(16, since=0)
    hs = [stable_hash(f"e{i}") for i in range(RecentIds.MAX + 1)]
    for i, h in enumerate(hs[:40]):
        assert not r.seen_or_add(h, i * 100)  # 10 per second
    assert r.n == 64 and r.seen_or_add(hs[0], 4_000)  # 40 ids later, 4 s later: a retry
    back = RecentIds.load(r.dump())
    assert back.dump() == r.dump() and back.seen_or_add(hs[1], 4_100)
    for i, h in enumerate(hs[40:], 40):
        assert not r.seen_or_add(h, i * 100)
    assert r.n == RecentIds.MAX and not r.seen_or_add(hs[0], 7_000)  # 65 ids later: forgotten
    old = RecentIds.load([r.dump()[0], 3])  # a record from before the ring could grow
    assert old.since == 0 and old.pos == 3


def test_recent_ids_refuse_a_ring_they_cannot_hold() -> None:
    """The first SMALL ids sit in a fixed C array (compiled build): a size or a record's position
    outside the ring is refused, never indexed."""
    with pytest.raises(ValueError):
        RecentIds(RecentIds.SMALL + 1)
    ring16 = RecentIds(16).dump()[0]
    for bad in ([ring16, 16, 0], [ring16, -1, 0], [ring16 * 5, 0, 0]):
        with pytest.raises(ValueError):
            RecentIds.load(bad)


def test_simhash_novelty_exact_near_and_novel() -> None:
    n = SimhashNovelty(near=3)
    base = 0x0F0F_F0F0_1234_5678
    assert n.observe(base) == 0
    assert n.observe(base ^ 0b101) == 1  # Hamming 2: near-duplicate
    assert n.observe(base) == 2  # exact repeat (Bloom)
    assert n.observe(base ^ 0xFFFF_0000_0000_0000) == 0


def test_simhash_novelty_bounded_and_roundtrip() -> None:
    n = SimhashNovelty()
    for i in range(1000):
        n.observe((i * 0x9E3779B97F4A7C15) & (2**64 - 1))
    d = n.dump()
    assert len(bytes.fromhex(d[0])) == len(bytes.fromhex(d[1])) == 256  # bounded: two generations
    m = SimhashNovelty.load(d)
    x = 0x1234_5678_9ABC_DEF0
    assert m.observe(x) == n.observe(x)


def test_heavy_hitters_coverage_counts_unkeyed() -> None:
    h = HeavyHitters(3)
    for _ in range(6):
        h.add("t1")
    h.total += 4  # four events without a template
    assert math.isclose(h.coverage(3), 0.6)
    assert h.top(1) == ["t1"]


def test_distinct_sketch_exact_then_estimate() -> None:
    d = DistinctSketch(k=8)
    for i in range(5):
        d.add(f"10.0.{i}.0/24")
    assert d.estimate() == 5.0
    big = DistinctSketch(k=8, n_examples=2)
    for i in range(5000):
        big.add(f"v{i}")
    assert 2500 < big.estimate() < 10_000  # K minimum values at k=8: the order of magnitude
    assert len(big.hashes()) == 8 and big.examples == ("v0", "v1")
    with pytest.raises(ValueError, match="outside"):
        DistinctSketch(k=DistinctSketch.MAX_K + 1)


def test_entropy_normalised() -> None:
    assert math.isclose(entropy([1] * 10), 1.0)
    assert entropy([3, 0, 0]) == 0.0


def test_feature_rates_and_shares() -> None:
    t0 = 1_700_000_000_000
    st = AccountState("a", 0, created_ms=t0 - 10 * 86_400_000, first_ms=t0)
    for _m in range(10):  # 10 minutes x 6 events, half chain-of-thought
        st.bucket.v[EV] += 6
        st.bucket.v[COT] += 3
        fold(st, st.bucket.minute_ms + 60_000)
        st.bucket.minute_ms += 60_000
        st.bucket.v = array("d", [0] * len(st.bucket.v))
    f = dict(zip(NAMES, feature_vector(st, t0 + 10 * 60_000), strict=True))
    assert math.isclose(f["cot_share"], 0.5) and math.isclose(f["cot_share_6h"], 0.5)
    assert 4.5 < f["rate_per_min_15m"] < 6.5  # ~6 events/min
    assert math.isclose(f["account_age_days"], 10 + 10 / 1440, rel_tol=1e-6)
    assert f["hours_active_24h"] == 1.0


def test_state_dump_load_roundtrip() -> None:
    st = AccountState("a", 0, created_ms=0, first_ms=1_700_000_000_000)
    st.tpl.add("x")
    st.ips.add("1.2.3.0/24")
    st2 = AccountState.load(st.dump())
    assert st2.dump() == st.dump()


def test_a_record_of_the_earlier_layout_restores_with_the_same_features() -> None:
    """Changelogs written before ``acc`` held the three vectors restore: a warm account's record from
    that version (``tests/data``, with its feature vector computed there) gives the same features."""
    old = orjson.loads((Path(__file__).parent / "data" / "account-record-v0.json").read_bytes())
    record = old["record"]
    assert len(record) == len(AccountState.__slots__) + 2
    st = AccountState.load(record)
    assert st.own_n == 3 and len(st.acc) == OWN0 + NF
    assert st.acc[OWN0:].tolist() == unpack("f", record[AccountState.__slots__.index("own_n") + 1]).tolist()
    assert feature_vector(st, old["now"]) == old["features"]
    assert AccountState.load(st.dump()).dump() == st.dump()
