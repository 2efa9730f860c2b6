"""Counting one event into its account: ``Engine.add``'s hot path, O(1) and allocation-light.

``count`` skips a Kafka replay (offset already applied) and a gateway retry (event id among the
account's recent ones, ``sketches.RecentIds``), rolls the account's minute bucket (``Shard.roll``:
the closed one is folded into the features) or counts a late event in its own minute, then
increments the bucket's counters and the account's sketches, and says whether the account's
scoring is due. The compiled build types it (``counting.pxd``): the account's and bucket's fields
are C integers there (``account.pxd``).

>>> from pipeline.account import AccountState  # cimported by the compiled build
>>> from pipeline.contract import Event
>>> from pipeline.detection import DetectionConfig
>>> from pipeline.shard import Shard
>>> sh, st = Shard(DetectionConfig()), AccountState("a", 0, 0, 60_000)
>>> ev = Event("e1", 60_000, "a", "m", 200, 10, 20, template_hash="ab", cot=True)
>>> count(sh, st, ev, 0, 60_000, 10, 3) == COUNTED, count(sh, st, ev, 0, 60_000, 10, 3) == REPLAYED
(True, True)
>>> count(sh, st, ev, 1, 60_000, 10, 3) == DUPLICATE, st.bucket.v[:3], st.cusum
(True, array('d', [1.0, 10.0, 20.0]), 6)
"""

from __future__ import annotations

from sys import intern

from pipeline.account import CAT0, COT, ERR, GAP, GAP2, LAT, NEAR, NEWM, NGAP, NOVEL, THR, TOOL, TREP, AccountState
from pipeline.contract import CATEGORY_INDEX, Event
from pipeline.linking import ip_prefix
from pipeline.shard import Shard
from pipeline.sketches import stable_hash

CAT_SLOT = {c: CAT0 + i for c, i in CATEGORY_INDEX.items()}
# Sequential evidence: a chain-of-thought CUSUM (+0.6 per CoT event, -0.4 otherwise, in tenths) at or
# above this level lets an account be scored every interval with any new event instead of 10.
COT_CUSUM_LEVEL = 15

# Outcomes of ``count``.
COUNTED, DUE, REPLAYED, DUPLICATE, LATE = range(5)


def count(
    sh: Shard, st: AccountState, event: Event, offset: int, lateness: int, min_events: int, force_min: int
) -> int:
    """Count one event in its account's minute bucket and state: COUNTED, DUE (the account's scoring
    is due now), or why it was not counted (REPLAYED offset, DUPLICATE event id, LATE: counted in its
    minute's aggregate only)."""
    if offset <= st.last_offset:
        return REPLAYED
    st.last_offset = offset
    if not st.dirty:
        st.dirty = True
        sh.dirty.append(st.account_id)
    ts = event.ts_ms
    if st.ids.seen_or_add(stable_hash(event.event_id), ts):
        st.dups += 1
        return DUPLICATE
    st.events += 1
    b = st.bucket
    minute = ts - ts % 60_000
    if minute != b.minute_ms:
        if minute > b.minute_ms and ts >= sh.clock - lateness:
            sh.roll(st, minute)
            b = st.bucket
        else:
            sh.late(st, event, minute)
            return LATE
    if not b.dirty:
        b.dirty = True
        sh.agg_dirty.append(b)
    v = b.v
    v[0] += 1  # EV
    v[1] += event.input_tokens  # IN
    v[2] += event.output_tokens  # OUT
    status = event.status
    if status >= 429:
        if status == 429:
            v[THR] += 1
        elif status >= 500:
            v[ERR] += 1
    if event.cot:  # CUSUM of chain-of-thought share vs 0.4, in tenths (small ints: no allocation)
        v[COT] += 1
        c = st.cusum + 6
        st.cusum = c if c < 200 else 200
    elif st.cusum:
        c = st.cusum - 4
        st.cusum = c if c > 0 else 0
    if event.tools:
        v[TOOL] += 1
    cat = event.category
    if cat:
        v[CAT_SLOT[cat]] += 1
    v[LAT] += event.latency_ms
    gap = ts - st.prev_ts
    if gap > 0:
        st.prev_ts = ts
        if gap < 600_000:
            v[GAP] += gap
            v[GAP2] += gap * gap
            v[NGAP] += 1
    if event.simhash >= 0:
        if st.nov.observe(event.simhash):
            v[NEAR] += 1
        else:
            v[NOVEL] += 1
    th = event.template_hash
    tpl = st.tpl
    if th:
        t1 = st.t1
        if th == t1:
            tpl.add(t1)
            v[TREP] += 1
        else:
            # Strings an account keeps are interned: one copy per value across accounts (a
            # campaign's templates, user agents, addresses), not one per account.
            th = intern(th)
            tpl.add(th)
            if th == st.t2:
                v[TREP] += 1
            st.t2 = t1
            st.t1 = th
    else:
        tpl.total += 1
    if event.model != st.last_model:
        sh.model_change(st, event.model, ts)
    if st.model_new:
        v[NEWM] += 1
    ip = event.ip
    if ip and ip != st.last_ip:
        st.last_ip = intern(ip)
        st.ips.add(intern(ip_prefix(ip)))
    if event.user_agent != st.last_ua or event.asn != st.last_asn:
        st.last_ua, st.last_asn = intern(event.user_agent), event.asn
        st.asn_ua.add(intern(f"{event.asn}|{event.user_agent[:64]}"))
    pay = event.payment_fingerprint
    if pay and pay != st.last_pay:
        st.last_pay = pay = intern(pay)
        st.pays.add(pay)
    n = st.pending + 1
    st.pending = n
    if n == 1:
        sh.pending[st.account_id] = st
    if ts >= st.next_score_ms and (
        n >= min_events or st.cusum >= COT_CUSUM_LEVEL or (ts >= st.force_ms and n >= force_min)
    ):
        return DUE
    return COUNTED
