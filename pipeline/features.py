"""Per-account online features in event time.

Hot path: each event only increments counters in the account's current
minute bucket (``MinuteBucket.v``). When the account's minute rolls over,
the closed bucket is folded into two exponentially decayed accumulators
(short = 15 min, long = 6 h). Features are computed from those at scoring
time, never per event.

>>> st = AccountState("a", 0, created_ms=0, first_ms=0)
>>> st.bucket.v[EV] += 3; st.bucket.v[COT] += 3
>>> f = feature_vector(st, 60_000)
>>> f[NAMES.index("cot_share")]
1.0
"""

from __future__ import annotations

import math
from array import array
from itertools import repeat
from operator import add, attrgetter, mul
from typing import Any

from pipeline.alerts import Incident
from pipeline.contract import CATEGORIES
from pipeline.sketches import DistinctSketch, HeavyHitters, RecentIds, SimhashNovelty, entropy, pack, unpack

# Bucket vector layout.
EV, IN, OUT, ERR, THR, COT, TOOL, NOVEL, NEAR, NEWM, GAP, GAP2, NGAP, LAT, ACT, TREP = range(16)
CAT0 = 16
NV = CAT0 + len(CATEGORIES)

TAU_SHORT_MS = 15 * 60_000
TAU_LONG_MS = 6 * 3_600_000
MASK48 = (1 << 48) - 1
SLOT_MS = 300_000  # activity-mask slot (synchronized-timing signature)

NAMES = (
    "rate_per_min_15m",
    "rate_per_min_6h",
    "out_tokens_per_min_15m",
    "cot_share",
    "cot_share_6h",
    "novelty_share",
    "near_dup_share",
    "template_concentration",
    "category_entropy_6h",
    "category_sweep",
    "out_in_ratio",
    "timing_cv",
    "hours_active_24h",
    "error_rate",
    "throttle_rate",
    "account_age_days",
    "new_model_share",
    "tool_share_6h",
    "distinct_ip_prefixes",
    "distinct_asn_ua",
    "rate_surge",
    "events_6h",
    "template_repeat_15m",
    "cot_share_6h_lower",
)
NF = len(NAMES)


class MinuteBucket:
    """One account-minute of counters (also the source of ``AggregateRow``)."""

    __slots__ = ("account_id", "minute_ms", "v", "models", "dirty")

    def __init__(self, account_id: str, minute_ms: int, model: str = "") -> None:
        self.account_id = account_id
        self.minute_ms = minute_ms
        self.v: list[Any] = [0] * NV  # ints, latency float
        self.models: list[str] = [model] if model else []
        self.dirty = False


class AccountState:
    """Everything the detector keeps about one account (~2-3 KB, see tests)."""

    __slots__ = (
        "account_id",
        "shard",
        "last_offset",
        "created_ms",
        "first_ms",
        "prev_ts",
        "org_id",
        "bucket",
        "ids",
        "nov",
        "tpl",
        "ips",
        "asn_ua",
        "pays",
        "last_model",
        "model_new",
        "last_ip",
        "last_ua",
        "last_asn",
        "last_pay",
        "short",
        "long",
        "fold_ms",
        "hours",
        "hour_last",
        "act_mask",
        "act_slot",
        "dom_mask",
        "dom_old",
        "dom_rot_ms",
        "pending",
        "next_score_ms",
        "force_ms",
        "last_score_ms",
        "last_score",
        "own",
        "own_n",
        "fp_bias",
        "confirmed",
        "allowlisted",
        "incident",
        "dups",
        "late",
        "events",
        "dirty",
        "tpl_decay_ms",
        "has_old_model",
        "t1",
        "t2",
        "cusum",
        "row_ms",
    )

    def __init__(self, account_id: str, shard: int, created_ms: int, first_ms: int) -> None:
        self.account_id = account_id
        self.shard = shard
        self.last_offset = -1
        self.created_ms = created_ms or first_ms
        self.first_ms = first_ms
        self.prev_ts = first_ms
        self.org_id = ""
        self.bucket = MinuteBucket(account_id, first_ms - first_ms % 60_000)
        self.ids = RecentIds(16)
        self.nov = SimhashNovelty()
        self.tpl = HeavyHitters(6)
        self.ips = DistinctSketch()
        self.asn_ua = DistinctSketch()
        self.pays = DistinctSketch(4, 2)
        self.last_model = ""
        self.model_new = False
        self.has_old_model = False
        self.t1 = self.t2 = ""  # the last two distinct template hashes
        self.last_ip = self.last_ua = self.last_pay = ""
        self.last_asn = -2
        self.short = array("f", bytes(4 * NV))
        self.long = array("f", bytes(4 * NV))
        self.fold_ms = first_ms - first_ms % 60_000
        self.hours = 0  # bit i: active in clock hour hour_last - i (24 bits)
        self.hour_last = 0
        self.act_mask = 0
        self.act_slot = first_ms // SLOT_MS
        self.dom_mask = self.dom_old = 0
        self.dom_rot_ms = first_ms
        self.tpl_decay_ms = first_ms
        self.pending = 0
        self.next_score_ms = 0
        self.force_ms = 0
        self.last_score_ms = 0
        self.last_score = 0.0
        self.own = array("f")  # own-history EWMA of the features (allocated at the first learning)
        self.own_n = 0
        self.fp_bias = 0.0
        self.confirmed = False
        self.allowlisted = False
        self.incident: Incident | None = None
        self.dups = self.late = self.events = 0
        self.dirty = False
        self.cusum = 0  # chain-of-thought CUSUM in tenths (see engine.COT_CUSUM_LEVEL)
        self.row_ms = -(1 << 62)  # event time of the last scoring that emitted rows

    # -- persistence ---------------------------------------------------------
    def dump(self) -> list[object]:
        """Plain-JSON form (orjson) of the whole state (one positional list, slot order)."""
        out = list(_ALL_SLOTS(self))
        b = self.bucket
        out[_I_BUCKET] = [b.minute_ms, b.v, b.models]
        for i in _I_ARRAYS:
            out[i] = pack(out[i])  # type: ignore[arg-type]
        for i in _I_SKETCHES:
            out[i] = out[i].dump()  # type: ignore[attr-defined]
        if self.incident is not None:
            out[_I_INCIDENT] = self.incident.dump()
        out[_I_LAST_IP] = ""  # a memo of the raw address: never written to the changelog (only prefixes are)
        return out

    @classmethod
    def load(cls, d: list) -> AccountState:  # type: ignore[type-arg]
        st = cls.__new__(cls)
        kinds: dict[str, type[RecentIds | SimhashNovelty | HeavyHitters | DistinctSketch]] = {
            "ids": RecentIds,
            "nov": SimhashNovelty,
            "tpl": HeavyHitters,
            "ips": DistinctSketch,
            "asn_ua": DistinctSketch,
            "pays": DistinctSketch,
        }
        for name, val in zip(cls.__slots__, d, strict=True):
            if name in kinds:
                val = kinds[name].load(val)
            elif name in ("short", "long", "own"):
                val = unpack("f", val)
            elif name == "incident":
                val = Incident.load(val) if val is not None else None
            elif name == "bucket":
                bk = MinuteBucket(d[0], val[0])
                bk.v, bk.models = list(val[1]), list(val[2])
                val = bk
            setattr(st, name, val)
        st.dirty = False
        return st


_ALL_SLOTS = attrgetter(*AccountState.__slots__)
_I_BUCKET = AccountState.__slots__.index("bucket")
_I_ARRAYS = [AccountState.__slots__.index(n) for n in ("short", "long", "own")]
_I_SKETCHES = [AccountState.__slots__.index(n) for n in ("ids", "nov", "tpl", "ips", "asn_ua", "pays")]
_I_INCIDENT = AccountState.__slots__.index("incident")
_I_LAST_IP = AccountState.__slots__.index("last_ip")


def fold(st: AccountState, new_minute_ms: int) -> None:
    """Close the current bucket: decay the accumulators to its minute and add it in (C-level map)."""
    b = st.bucket
    m = b.minute_ms
    dt = m - st.fold_ms
    v = b.v
    v[ACT] = 1
    if dt:
        st.short = array("f", map(add, map(mul, st.short, repeat(math.exp(-dt / TAU_SHORT_MS), NV)), v))
        st.long = array("f", map(add, map(mul, st.long, repeat(math.exp(-dt / TAU_LONG_MS), NV)), v))
    else:
        st.short = array("f", map(add, st.short, v))
        st.long = array("f", map(add, st.long, v))
    st.fold_ms = m
    hour = m // 3_600_000
    d = hour - st.hour_last
    if d > 0:
        st.hours = (st.hours << d) & 0xFFFFFF if d < 24 else 0
        st.hour_last, d = hour, 0
    if d > -24:
        st.hours |= 1 << -d
    slot = m // SLOT_MS
    if slot != st.act_slot:
        st.act_mask = (st.act_mask << min(48, slot - st.act_slot)) & MASK48
        st.act_slot = slot
    st.act_mask |= 1
    if m - st.tpl_decay_ms >= 3_600_000:
        st.tpl.decay(0.5)
        st.tpl_decay_ms = m


def hours_active(st: AccountState, now: int) -> int:
    """Distinct clock hours with activity among the last 24 (the current one included)."""
    shift = now // 3_600_000 - st.hour_last
    if shift >= 24:
        return 0
    return ((st.hours << shift) & 0xFFFFFF if shift > 0 else st.hours).bit_count()


def _window(st: AccountState, now: int, tau: int) -> float:
    """Minutes of (decayed) observation behind an accumulator: tau * (1 - e^(-age/tau))."""
    age = max(60_000, now - st.first_ms + 60_000)
    return max(1.0, tau / 60_000 * (1 - math.exp(-age / tau)))


def feature_vector(st: AccountState, now: int) -> list[float]:
    """The ``NAMES`` features of one account at event time ``now`` (current bucket included)."""
    v = st.bucket.v
    dt = max(0, st.bucket.minute_ms - st.fold_ms)
    ds, dl = math.exp(-dt / TAU_SHORT_MS), math.exp(-dt / TAU_LONG_MS)
    s = list(map(add, map(mul, st.short, repeat(ds, NV)), v))  # a * d + x, as fold computes it
    lg = list(map(add, map(mul, st.long, repeat(dl, NV)), v))
    ev_s, ev_l = max(s[EV], 1e-9), max(lg[EV], 1e-9)
    win_s = _window(st, now, TAU_SHORT_MS)
    rate_s = s[EV] / win_s
    rate_l = lg[EV] / _window(st, now, TAU_LONG_MS)
    cats_s = s[CAT0:NV]
    dom = max(range(len(cats_s)), key=cats_s.__getitem__) if sum(cats_s) else -1
    if now - st.dom_rot_ms >= 3 * 3_600_000:
        st.dom_old, st.dom_mask, st.dom_rot_ms = st.dom_mask, 0, now
    if dom >= 0 and cats_s[dom] >= 5:
        st.dom_mask |= 1 << dom
    gaps = lg[NGAP]
    if gaps >= 3:
        mean = lg[GAP] / gaps
        var = max(0.0, lg[GAP2] / gaps - mean * mean)
        cv = math.sqrt(var) / mean if mean > 0 else 0.0
    else:
        cv = 1.0
    hours24 = hours_active(st, now)
    return [
        rate_s,
        rate_l,
        s[OUT] / win_s,
        s[COT] / ev_s,
        lg[COT] / ev_l,
        s[NOVEL] / ev_s,
        s[NEAR] / ev_s,
        st.tpl.coverage(3),
        entropy(lg[CAT0:NV]),
        float((st.dom_mask | st.dom_old).bit_count()),
        lg[OUT] / max(lg[IN], 1.0),
        cv,
        float(hours24),
        s[ERR] / ev_s,
        s[THR] / ev_s,
        max(0.0, (now - st.created_ms) / 86_400_000),
        s[NEWM] / ev_s,
        lg[TOOL] / ev_l,
        st.ips.estimate(),
        st.asn_ua.estimate(),
        rate_s / max(rate_l, 0.05),
        lg[EV],
        s[TREP] / ev_s,
        max(0.0, p - math.sqrt(p * (1 - p) / ev_l)) if (p := lg[COT] / ev_l) > 0 else 0.0,
    ]
