"""Engine: determinism, exactly-once, snapshot/restore, feedback, memory."""

from __future__ import annotations

import dataclasses
import functools
import tracemalloc

import orjson

from pipeline.account import AccountState
from pipeline.alerts import DETECTING
from pipeline.clusters import ClusterDetector
from pipeline.contract import Event
from pipeline.detection import DetectionConfig
from pipeline.engine import Engine
from pipeline.linking import AccountSummary
from pipeline.offline import run_offline
from pipeline.records import FeedbackRow
from pipeline.simulate import SimConfig, generate
from pipeline.validation import decode_event, event_from_dict

T0 = 1_717_200_000_000
CFG = DetectionConfig()


@functools.cache
def sim_events() -> tuple[Event, ...]:
    return tuple(event_from_dict(d) for d in generate(SimConfig(seed=5, accounts=80, hours=2.5)))


def harvest_events(account: str = "h1", n: int = 400, start: int = T0) -> list[Event]:
    return [
        Event(
            f"{account}-{i}",
            start + i * 3000,
            account,
            "m",
            200,
            300,
            2000,
            account_created_ms=start,
            simhash=(i * 0x9E3779B97F4A7C15) & (2**64 - 1),
            category=("math", "reasoning", "coding")[i % 3],
            cot=i % 10 != 0,
            ip="10.0.0.1",
        )
        for i in range(n)
    ]


def test_same_input_same_alerts() -> None:
    a = list(run_offline(sim_events(), CFG))
    b = list(run_offline(sim_events(), CFG))
    assert a and a == b


def test_harvester_alerts_with_reasons() -> None:
    alerts = list(run_offline(harvest_events(), CFG))
    opens = [a for a in alerts if a.state == "open"]
    assert len(opens) == 1 and opens[0].subject_id == "h1"
    assert opens[0].reasons and opens[0].reasons[0].feature == "cot_share_6h"
    assert len(alerts) <= 4  # one incident, few messages
    d = opens[0].to_dict(T0)
    assert set(d) >= {"alert_id", "version", "state", "reasons", "window_start", "first_seen", "emitted_at"}


def _run(engine: Engine, events: list[Event] | tuple[Event, ...], first_offset: int = 0) -> list:
    out = []
    for i, ev in enumerate(events, first_offset):
        engine.add(ev, 0, i)
    o = engine.take_outputs()
    out += o.alerts + o.scores
    return out


def test_duplicate_event_id_counted_once() -> None:
    evs = harvest_events(n=50)
    e1, e2 = Engine(CFG), Engine(CFG)
    _run(e1, evs)
    dup = evs[:25] + [evs[24]] + evs[25:]
    _run(e2, dup)
    assert e2.duplicates == 1
    a1 = sum(r.events for r in e1.take_outputs().aggregates)
    s1, s2 = e1.shards[0].accounts["h1"], e2.shards[0].accounts["h1"]
    assert s1.events == s2.events == 50 and a1 == 0


def test_offset_replay_skipped() -> None:
    evs = harvest_events(n=60)
    e = Engine(CFG)
    for i, ev in enumerate(evs):
        e.add(ev, 0, i)
    for i, ev in enumerate(evs[40:], 40):  # consumer restarted from an older offset
        e.add(ev, 0, i)
    assert e.replayed == 20 and e.shards[0].accounts["h1"].events == 60


def test_aggregates_versions_cumulative() -> None:
    e = Engine(CFG)
    evs = harvest_events(n=30)  # 3 s apart: 20 per minute
    for i, ev in enumerate(evs[:10]):
        e.add(ev, 0, i)
    first = e.take_outputs().aggregates
    for i, ev in enumerate(evs[10:], 10):
        e.add(ev, 0, i)
    rows = e.take_outputs().aggregates
    assert first[0].version == 10 and rows[0].minute_ms == first[0].minute_ms and rows[0].version == 20
    assert sum(r.events for r in rows) == 30 - 10 + 10


def test_snapshot_restore_equals_uninterrupted() -> None:
    evs = sim_events()
    half = len(evs) // 2
    ref = Engine(CFG)
    ref_out = _run(ref, evs[:half])
    ref_tail = _run(ref, evs[half:], half)
    a = Engine(CFG)
    assert _run(a, evs[:half]) == ref_out
    snaps = a.dirty_snapshots(0)
    assert a.dirty_snapshots(0)[:-1] == []  # nothing changed since
    b = Engine(CFG)
    for key, blob in snaps:
        b.restore(0, key, blob)
    assert b.accounts_tracked() == a.accounts_tracked()
    a.drop_shard(0)
    assert a.accounts_tracked() == 0
    assert _run(b, evs[half:], half) == ref_tail


def test_allowlist_suppresses_and_false_positive_raises_threshold() -> None:
    e = Engine(CFG)
    e.apply_feedback(FeedbackRow("allowlist", account_id="h1"))
    alerts = [x for x in _run(e, harvest_events()) if hasattr(x, "alert_id")]
    assert alerts == []
    e2 = Engine(CFG)
    out = _run(e2, harvest_events(n=100))
    opened = [x for x in out if hasattr(x, "alert_id")]
    assert opened
    e2.apply_feedback(FeedbackRow("false_positive", alert_id=opened[0].alert_id))
    st = e2.shards[0].accounts["h1"]
    assert st.fp_bias > 0 and st.incident is None
    assert e2.take_outputs().alerts[0].state == "resolved"


def test_alert_index_for_feedback_is_bounded() -> None:
    e = Engine(CFG)
    e.verdicts.ALERT_INDEX_MAX = 2
    opened = [x for x in _run(e, harvest_events(n=100)) if hasattr(x, "alert_id")]
    assert opened and list(e.verdicts.alert_account.values()) == ["h1"]
    e.verdicts.remember_alert("al-x", "x")
    e.verdicts.remember_alert("al-y", "y")
    assert list(e.verdicts.alert_account) == ["al-x", "al-y"]  # the oldest (h1's) forgotten
    e.apply_feedback(FeedbackRow("false_positive", alert_id=opened[0].alert_id))
    assert e.shards[0].accounts["h1"].fp_bias == 0  # unknown alert id: no effect
    e.apply_feedback(FeedbackRow("false_positive", account_id="h1", alert_id=opened[0].alert_id))
    assert e.shards[0].accounts["h1"].fp_bias > 0  # the account named: applies


def test_cluster_detector_links_shared_infrastructure_not_corporate() -> None:
    cd = ClusterDetector(CFG)
    alerts = []
    for i in range(6):
        s = AccountSummary(
            f"hy{i}",
            T0 + i * 1000,
            T0 - 86_400_000,
            T0,
            score=0.3,
            harvest=0.9,
            events=50,
            ip_prefixes=["5.6.7.0/24"],
            payments=["pf-1"],
            templates=["ab"],
            act_mask=0b1111,
            act_slot=100,
        )
        alerts += cd.add_summary(s)
    assert alerts and alerts[0].subject_kind == "cluster" and len(alerts[-1].accounts) >= 3
    cd2 = ClusterDetector(CFG)
    corp = []
    for i in range(30):
        s = AccountSummary(
            f"emp{i}",
            T0 + i * 1000,
            T0 - 900 * 86_400_000,
            T0,
            org_id="org-1",
            harvest=0.0,
            ip_prefixes=["9.9.9.0/24"],
            asn_uas=["7922|Chrome"],
            payments=["pf-corp"],
        )
        corp += cd2.add_summary(s)
    assert corp == []
    cd3 = ClusterDetector(CFG)
    cd3.restore(cd.snapshot())
    assert cd3.snapshot() == cd.snapshot()
    assert AccountSummary.from_dict(s.to_dict()) == s


def test_cluster_detector_keeps_every_key_and_restores_older_snapshots() -> None:
    """An account links by every key its summaries ever carried (a template that left its top 3
    still links it); a snapshot from before the index by kind ("kind:key" key sets and lists of
    accounts, forgotten keys as empty lists) restores to the same detector."""
    cd = ClusterDetector(CFG)
    for i in range(4):
        tpl = ["old-tpl"] if i % 2 == 0 else ["new-tpl"]  # hy0 and hy2 bring old-tpl, hy1 and hy3 new-tpl
        cd.add_summary(AccountSummary(f"hy{i}", T0 + i, T0, T0, ip_prefixes=["5.6.7.0/24"], templates=tpl))
    cd.add_summary(AccountSummary("hy0", T0 + 10, T0, T0, ip_prefixes=["5.6.7.0/24"], templates=["new-tpl"]))
    assert cd.summaries["hy0"].templates == ("new-tpl", "old-tpl")
    assert cd.adj["hy0"]["hy2"] == ["ip", "tpl"]  # by old-tpl, no longer in hy0's latest summary
    cd.add_summary(AccountSummary("gone", T0 + 20, T0, T0, payments=["pf-9"]))
    cd._forget("gone")
    assert "pf-9" not in cd.index["pay"]

    new = orjson.loads(cd.snapshot())
    old = dict(new)
    fields = {"au": "asn_uas", "ip": "ip_prefixes", "pay": "payments", "tpl": "templates"}
    old["keysets"] = {
        s["account_id"]: sorted(f"{kind}:{k}" for kind, f in fields.items() for k in s[f]) for s in new["summaries"]
    }
    old["summaries"] = [{**s, "templates": s["templates"][:1]} for s in new["summaries"]]  # the latest only
    old["index"] = {f"{kind}:{k}": v if isinstance(v, list) else [v] for kind, keys in new["index"].items()
                    for k, v in keys.items()} | {"pay:pf-9": []}  # fmt: skip
    restored = ClusterDetector(CFG)
    restored.restore(orjson.dumps(old))
    assert restored.snapshot() == cd.snapshot()


def test_cluster_detector_memory_per_account() -> None:
    """An account's keys are small tuples of the strings its summary brought, which the key index
    shares; a key with one account holds the account id alone (a re-sent summary adds nothing)."""
    cd = ClusterDetector(CFG)
    n = 2000

    def summary(a: int, ts: int) -> AccountSummary:
        return AccountSummary(
            f"acct{a}", ts, T0, T0, score=0.1, events=5, ip_prefixes=[f"10.{a % 256}.{a // 256}.0/24"],
            asn_uas=[f"7922|UA {a}"], payments=[f"pf-{a}"], templates=[f"t{a:x}", f"u{a:x}", f"v{a:x}"],
        )  # fmt: skip

    first = [summary(a, T0) for a in range(n)]
    tracemalloc.start()  # before the first pass: the summaries the second pass replaces are freed in view
    for s in first:
        cd.add_summary(s)
    before = tracemalloc.get_traced_memory()[0]
    for a in range(n):  # the same accounts again, their keys as fresh strings
        cd.add_summary(summary(a, T0 + 30_000))
    again = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    held = cd.summaries["acct7"]
    assert [len(keys) for keys in held.link_keys()] == [1, 1, 1, 3]
    assert all(isinstance(keys, tuple) for keys in held.link_keys())
    indexed = {id(k) for keys in cd.index.values() for k in keys}
    assert {id(k) for keys in held.link_keys() for k in keys} <= indexed
    assert all(isinstance(a, str) for keys in cd.index.values() for a in keys.values())  # no list of one
    assert before / n < 700, before / n  # key sets and one-account lists of "kind:key" strings exceed it
    assert again < 300, again  # set-based key sets of fresh strings (an earlier version) fail this


def test_memory_per_account_under_4kb() -> None:
    e = Engine(CFG)
    n = 5000
    events = [
        Event(
            f"e{a}-{k}",
            T0 + k * 61_000 + a,
            f"acct{a}",
            "m-large-1",
            200,
            100,
            200,
            simhash=(a * 7919 + k * 104729) & (2**64 - 1),
            template_hash=f"{k % 3:x}",
            category="chat",
            ip=f"10.{a % 256}.{k}.1",
            asn=7922,
            user_agent="Mozilla/5.0",
            payment_fingerprint="pf",
        )
        for a in range(n)
        for k in range(3)
    ]
    e.advance(0, T0)  # the shard and its River models (and River's import) exist before the count
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, ev in enumerate(events):
        e.add(ev, 0, i)
    e.take_outputs()
    e.shards[0].recent.clear()
    per = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    assert per < 4096, per


def test_accounts_share_the_strings_they_keep() -> None:
    """A user agent, address, template or payment fingerprint that many accounts use is held once
    (decoding gives every event fresh strings), also by an account loaded from its record."""
    e = Engine(CFG)
    for a in range(2):
        raw = orjson.dumps({
            "event_id": f"s{a}", "ts": T0, "account_id": f"share{a}", "model": "m", "status": 200,
            "input_tokens": 1, "output_tokens": 1, "payment_fingerprint": "pf-shared",
            "client": {"ip": "10.9.8.7", "user_agent": "agent/1.0"},
            "prompt": {"template_hash": "abcdef01"},
        })  # fmt: skip
        e.add(decode_event(raw), 0, a)
    s0, s1 = (e.shards[0].accounts[f"share{a}"] for a in range(2))
    loaded = AccountState.load(orjson.loads(orjson.dumps(s1.dump())))
    for st in (s1, loaded):
        assert st.last_ua is s0.last_ua and st.last_pay is s0.last_pay and st.t1 is s0.t1
        assert st.tpl.keys[0] is s0.t1 and st.pays.examples[0] is s0.last_pay
    assert s1.last_ip is s0.last_ip and loaded.account_id is s1.account_id


def test_idle_accounts_evicted_with_tombstone_and_return_fresh() -> None:
    e = Engine(CFG)
    evs = harvest_events("old", n=20) + harvest_events("busy", n=20)
    _run(e, evs)
    e.dirty_snapshots(0)
    later = T0 + CFG.idle_evict_ms + 2 * 3_600_000
    e.advance(0, later)  # forced last scoring; the incident resolves after quiet_ms, then eviction
    e.advance(0, later + 2 * 3_600_000)
    e.take_outputs()
    sh = e.shards[0]
    assert "old" not in sh.accounts and e.evicted == 2
    snaps = dict(e.dirty_snapshots(0))
    assert snaps["old"] == b"" and snaps["busy"] == b""  # changelog tombstones
    r = Engine(CFG)
    r.restore(0, "old", orjson.dumps(AccountState("old", 0, T0, T0).dump()))
    r.restore(0, "old", b"")  # a tombstone later in the log wins
    assert r.accounts_tracked() == 0
    _run(e, harvest_events("old", n=5, start=later + 3 * 3_600_000), 1000)  # a returning account starts afresh
    assert sh.accounts["old"].events == 5


def ordinary_events(account: str, times_ms: list[int]) -> list[Event]:
    """Plain chat requests of an old account (no CoT): scores stay far below the threshold."""
    return [
        Event(f"{account}-{i}", t, account, "m", 200, 50, 80, account_created_ms=T0 - 400 * 86_400_000,
              category="chat", ip="10.9.9.9")  # fmt: skip
        for i, t in enumerate(times_ms)
    ]


def test_forced_score_needs_three_new_events() -> None:
    """Sparse ordinary traffic: 1-2 new events never force a scoring; the third does (at the boundary)."""
    eng = Engine(CFG)
    evs = ordinary_events("sparse", [T0, T0 + 20 * 60_000, T0 + 40 * 60_000])
    for i, ev in enumerate(evs[:2]):
        eng.add(ev, 0, i)
    eng.advance(0, T0 + 39 * 60_000)
    assert eng.take_outputs().scores == []  # forced gap passed, but only 2 events pending
    eng.add(evs[2], 0, 2)
    eng.advance(0, T0 + 42 * 60_000)
    assert [r.account_id for r in eng.take_outputs().scores] == ["sparse"]


def test_screened_scorings_emit_rows_at_most_every_row_gap() -> None:
    """A CoT-heavy but templated old account is scored every minute (CUSUM cadence) yet looks clearly
    ordinary: score rows and cluster summaries come at most once per ``row_gap``."""
    eng = Engine(CFG)
    evs = [
        Event(f"t-{i}", T0 + i * 30_000, "templated", "m", 200, 50, 80, account_created_ms=T0 - 400 * 86_400_000,
              category="reasoning", cot=True, template_hash="abc1", ip="10.9.9.9")  # fmt: skip
        for i in range(60)  # 2 per minute for 30 min
    ]
    for i, ev in enumerate(evs):
        eng.add(ev, 0, i)
    out = eng.take_outputs()
    stamps = [r.ts_ms for r in out.scores]
    assert 3 <= len(stamps) <= 7 and len(out.summaries) == len(stamps)
    assert all(b - a >= CFG.row_gap_ms for a, b in zip(stamps, stamps[1:], strict=False))
    assert all(r.score < 0.2 * CFG.alert_threshold for r in out.scores)
    st = eng.shards[0].accounts["templated"]
    assert st.last_score_ms >= evs[-1].ts_ms - 60_000 > stamps[-1]  # still scored every minute, screened


def test_detected_account_rescored_every_fifth_interval() -> None:
    """Once an account's alert reports a detection (medium or above) it is re-scored every
    ``detected_score_every`` intervals (with 1, every interval: the pace before detection)."""
    for every in (CFG.detected_score_every, 1):
        eng = Engine(dataclasses.replace(CFG, detected_score_every=every))
        for i, ev in enumerate(harvest_events(n=1000)):  # 20 events a minute for 50 min
            eng.add(ev, 0, i)
        out = eng.take_outputs()
        detected = min(a.window_end_ms for a in out.alerts if a.state != "resolved" and a.severity in DETECTING)
        stamps = [r.ts_ms for r in out.scores if r.ts_ms >= detected]
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        assert len(gaps) >= 45 // every  # the first event of every ``every``-th interval
        assert all(every * CFG.score_interval_ms <= g < every * CFG.score_interval_ms + 3_000 for g in gaps)
    assert CFG.detected_score_every == 5
