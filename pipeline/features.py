"""Per-account online features in event time.

Hot path: each event only increments counters in the account's current
minute bucket (``MinuteBucket.v``). When the account's minute rolls over,
the closed bucket is folded into two exponentially decayed accumulators
(short = 15 min, long = 6 h). Features are computed from those at scoring
time, never per event.

>>> from pipeline.account import AccountState  # cimported by the compiled build (features.pxd)
>>> st = AccountState("a", 0, created_ms=0, first_ms=0)
>>> st.bucket.v[EV] += 3; st.bucket.v[COT] += 3
>>> f = feature_vector(st, 60_000)
>>> f[NAMES.index("cot_share")]
1.0
"""

from __future__ import annotations

import math
from array import array

from pipeline.account import (
    ACT,
    CAT0,
    COT,
    ERR,
    EV,
    GAP,
    GAP2,
    IN,
    LONG0,
    NEAR,
    NEWM,
    NGAP,
    NOVEL,
    NV,
    OUT,
    SLOT_MS,
    THR,
    TOOL,
    TREP,
    AccountState,
)
from pipeline.topk import entropy

TAU_SHORT_MS = 15 * 60_000
TAU_LONG_MS = 6 * 3_600_000
MASK48 = (1 << 48) - 1

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


def decay_add(acc: array, off: int, d: float, v: array) -> None:  # type: ignore[type-arg]
    """``acc[off + i] = acc[off + i] * d + v[i]`` in place for each ``v[i]``, in double precision,
    stored single (``features.pxd`` types it for the compiled build: a C loop instead of a Python
    float per element).

    >>> acc = array("f", [9.0, 1.0, 2.0]); decay_add(acc, 1, 0.5, array("d", [1, 0])); acc.tolist()
    [9.0, 1.5, 1.0]
    """
    a = acc
    for i in range(len(v)):
        x = v[i]
        a[off + i] = a[off + i] * d + x


def fold(st: AccountState, new_minute_ms: int) -> None:
    """Close the current bucket: decay the accumulators to its minute and add it in (``features.pxd``
    types it for the compiled build: the account's fields are C integers)."""
    b = st.bucket
    m = b.minute_ms
    dt = m - st.fold_ms
    v = b.v
    v[ACT] = 1
    decay_add(st.acc, 0, math.exp(-dt / TAU_SHORT_MS), v)  # dt 0: exp(-0.0) is exactly 1.0
    decay_add(st.acc, LONG0, math.exp(-dt / TAU_LONG_MS), v)
    st.fold_ms = m
    hour = m // 3_600_000
    d = hour - st.hour_last
    if d > 0:
        st.hours = (st.hours << d) & 0xFFFFFF if d < 24 else 0
        st.hour_last, d = hour, 0
    if d > -24:
        st.hours |= 1 << -d
    slot = m // SLOT_MS
    k = slot - st.act_slot
    if k:
        # (act_mask << k) & MASK48, never wider than 48 bits on the way (a C integer when compiled)
        st.act_mask = (st.act_mask & (MASK48 >> k)) << k if k < 48 else 0
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
    """The ``NAMES`` features of one account at event time ``now`` (current bucket included).

    Each count is its accumulator decayed to the current minute plus the minute's own count,
    ``acc * d + v`` as ``fold`` will store it, short (``s_``, 15 min) and long (``l_``, 6 h).
    ``features.pxd`` types it for the compiled build: C doubles read from the arrays, no vectors
    built on the way."""
    a, v = st.acc, st.bucket.v
    dt = max(0, st.bucket.minute_ms - st.fold_ms)
    ds, dl = math.exp(-dt / TAU_SHORT_MS), math.exp(-dt / TAU_LONG_MS)
    s_ev = a[EV] * ds + v[EV]
    l_ev = a[LONG0 + EV] * dl + v[EV]
    ev_s, ev_l = max(s_ev, 1e-9), max(l_ev, 1e-9)
    win_s = _window(st, now, TAU_SHORT_MS)
    rate_s = s_ev / win_s
    rate_l = l_ev / _window(st, now, TAU_LONG_MS)
    dom, top = -1, 0.0  # the short window's dominant category: the first of the largest counts
    for i in range(CAT0, NV):
        c = a[i] * ds + v[i]
        if c > top:
            dom, top = i - CAT0, c
    if now - st.dom_rot_ms >= 3 * 3_600_000:
        st.dom_old, st.dom_mask, st.dom_rot_ms = st.dom_mask, 0, now
    if dom >= 0 and top >= 5:
        st.dom_mask |= 1 << dom
    gaps = a[LONG0 + NGAP] * dl + v[NGAP]
    if gaps >= 3:
        mean = (a[LONG0 + GAP] * dl + v[GAP]) / gaps
        var = max(0.0, (a[LONG0 + GAP2] * dl + v[GAP2]) / gaps - mean * mean)
        cv = math.sqrt(var) / mean if mean > 0 else 0.0
    else:
        cv = 1.0
    l_cot = a[LONG0 + COT] * dl + v[COT]
    p = l_cot / ev_l
    return [
        rate_s,
        rate_l,
        (a[OUT] * ds + v[OUT]) / win_s,
        (a[COT] * ds + v[COT]) / ev_s,
        p,
        (a[NOVEL] * ds + v[NOVEL]) / ev_s,
        (a[NEAR] * ds + v[NEAR]) / ev_s,
        st.tpl.coverage(3),
        entropy([a[LONG0 + i] * dl + v[i] for i in range(CAT0, NV)]),
        float((st.dom_mask | st.dom_old).bit_count()),
        (a[LONG0 + OUT] * dl + v[OUT]) / max(a[LONG0 + IN] * dl + v[IN], 1.0),
        cv,
        float(hours_active(st, now)),
        (a[ERR] * ds + v[ERR]) / ev_s,
        (a[THR] * ds + v[THR]) / ev_s,
        max(0.0, (now - st.created_ms) / 86_400_000),
        (a[NEWM] * ds + v[NEWM]) / ev_s,
        (a[LONG0 + TOOL] * dl + v[TOOL]) / ev_l,
        st.ips.estimate(),
        st.asn_ua.estimate(),
        rate_s / max(rate_l, 0.05),
        l_ev,
        (a[TREP] * ds + v[TREP]) / ev_s,
        max(0.0, p - math.sqrt(p * (1 - p) / ev_l)) if p > 0 else 0.0,
    ]
