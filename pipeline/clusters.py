"""Coordinated-cluster detection over account summaries.

Accounts are linked when they share enough *kinds* of evidence: payment
fingerprint (weight 2), IP /24 prefix, ASN + user agent, a template hash, and
synchronized activity (weight 1 each). A link needs weight >= 2; links inside
one organisation count a quarter (many employees behind a corporate NAT are one
customer, not a ring). Keys shared by more than ``cluster_key_cap`` accounts
(a big ISP's ASN + a common browser UA) carry no information and are ignored.
A connected component of >= ``cluster_min_size`` accounts is scored from its
members' youth, their harvesting evidence, link strength and size.
"""

from __future__ import annotations

import hashlib
import math
from sys import intern
from typing import TYPE_CHECKING

import orjson

from pipeline.alerts import Alert, Incident, IncidentPolicy, Reason
from pipeline.linking import KIND_WEIGHT, AccountSummary, link_weight, same_sources

if TYPE_CHECKING:
    from pipeline.detection import DetectionConfig
    from pipeline.records import FeedbackRow

COMPONENT_GAP_MS = 60_000


class ClusterDetector:
    """Finds and tracks clusters; deterministic for a given order of summaries."""

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.policy = IncidentPolicy.for_config(config, "cluster")
        self.summaries: dict[str, AccountSummary] = {}
        # Key sets as sorted tuples (a set of 5+ strings takes 728 bytes; this tuple about 100).
        self.keysets: dict[str, tuple[str, ...]] = {}
        self.index: dict[str, list[str]] = {}
        self.adj: dict[str, dict[str, list[str]]] = {}
        self.last_eval: dict[str, int] = {}
        self.comp_eval: dict[str, int] = {}  # account -> event time its component was last scored
        self.member_of: dict[str, str] = {}
        self.incidents: dict[str, Incident] = {}
        self.bias: dict[str, float] = {}
        self.allow: set[str] = set()
        self.last_sweep = 0
        self.last_forget_hour = 0

    def add_summary(self, s: AccountSummary) -> list[Alert]:
        """Ingest one summary; returns cluster alert messages (open/update/resolved)."""
        out: list[Alert] = []
        if s.ts_ms - self.last_sweep >= 60_000:
            self._sweep(s.ts_ms, out)
        a = s.account_id
        if s.allowlisted or a in self.allow:
            return out
        prev = self.summaries.get(a)
        self.summaries[a] = s
        old = self.keysets.get(a, ())
        if prev is not None and old and same_sources(prev, s):
            new = []  # the same key sources as last time: every key is in the set already
        else:
            new = sorted({k for k in s.link_keys() if k not in old})
        index = self.index
        for k in new:
            lst = index.get(k)
            if lst is None:
                index[k] = [a]  # sized for one: most keys never get a second account
            elif len(lst) <= self.config.cluster_key_cap:
                lst.append(a)
        if new or a not in self.keysets:
            self.keysets[a] = tuple(sorted((*old, *new)))
        if new or s.ts_ms - self.last_eval.get(a, 0) >= self.config.cluster_eval_gap_ms:
            self._relink(a)
        if self.adj.get(a):
            self._evaluate(a, s.ts_ms, out)
        return out

    def _relink(self, a: str) -> None:
        s, ka = self.summaries[a], self.keysets[a]
        self.last_eval[a] = s.ts_ms
        cap = self.config.cluster_key_cap
        get = self.index.get
        cands: set[str] = set()
        for k in ka:
            lst = get(k)
            if lst and len(lst) <= cap:
                cands.update(lst)
        cands.discard(a)
        probe = set(ka)  # each candidate's keys are looked up in this (hashing, not a tuple scan)
        for b in sorted(cands):
            if b not in self.summaries:
                continue
            w, kinds = link_weight(s, self.summaries[b], self.keysets[b], probe)
            if w >= 2.0:
                self.adj.setdefault(a, {})[b] = kinds
                self.adj.setdefault(b, {})[a] = kinds
            else:
                self.adj.get(a, {}).pop(b, None)
                self.adj.get(b, {}).pop(a, None)

    def _component(self, a: str) -> list[str]:
        seen, todo = {a}, [a]
        while todo and len(seen) < 500:
            for b in self.adj.get(todo.pop(), {}):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return sorted(seen)

    def _evaluate(self, a: str, now: int, out: list[Alert]) -> None:
        # A component is scored at most once per COMPONENT_GAP_MS of event time, whichever member's
        # summary arrives: scoring costs O(members x links), so per-summary scoring is quadratic.
        if now - self.comp_eval.get(a, -COMPONENT_GAP_MS) < COMPONENT_GAP_MS:
            return
        members = self._component(a)
        for m in members:
            self.comp_eval[m] = now
        if len(members) < self.config.cluster_min_size:
            return
        ss = [self.summaries[m] for m in members]
        n = len(ss)
        young = sum(1 for s in ss if now - s.created_ms < 45 * 86_400_000) / n
        harvest = sum(s.harvest for s in ss) / n
        mscore = sum(s.score for s in ss) / n
        kinds = [k for m in members for k in self.adj.get(m, {}).values()]
        link = sum(sum(KIND_WEIGHT.get(x, 1.0) for x in k) for k in kinds) / max(1, len(kinds))
        sync = sum(1 for k in kinds if "sync" in k) / max(1, len(kinds))
        terms = {
            "new_accounts": 2.5 * young,
            "member_harvest_evidence": 3.0 * harvest,
            "shared_infrastructure": 1.5 * min(1.0, (link - 2) / 2),
            "cluster_size": min(1.0, (n - 2) / 5),
            "synchronized_timing": 1.0 * sync,
            "member_scores": 2.0 * mscore,
        }
        values = {
            "new_accounts": young,
            "member_harvest_evidence": harvest,
            "shared_infrastructure": link,
            "cluster_size": float(n),
            "synchronized_timing": sync,
            "member_scores": mscore,
        }
        score = 1 / (1 + math.exp(-(-5.0 + sum(terms.values()))))
        total = sum(v for v in terms.values() if v > 0) or 1.0
        reasons = [
            Reason(k, round(values[k], 4), 0.0, round(v / total, 4))
            for k, v in sorted(terms.items(), key=lambda kv: -kv[1])
            if v > 0
        ]
        existing = sorted(
            {self.member_of[m] for m in members if m in self.member_of},
            key=lambda c: (self.incidents[c].first_seen_ms if c in self.incidents else 0, c),
        )
        cid = (
            existing[0]
            if existing
            else "cluster-" + hashlib.sha1(f"{members[0]}|{now}".encode()).hexdigest()[:16]
        )
        inc = self.incidents.get(cid)
        first = min(s.first_ms for s in ss)
        thr = self.config.alert_threshold + self.bias.get(cid, 0.0)
        events = sum(s.events for s in ss)
        inc2, alert = self.policy.observe(
            inc, "cluster", cid, members, score, reasons, now, events, first, thr
        )
        if inc2 is not None:
            self.incidents[cid] = inc2
            for m in members:
                self.member_of[m] = cid
        if alert is not None:
            out.append(alert)

    def _sweep(self, now: int, out: list[Alert]) -> None:
        """Resolve quiet clusters; forget accounts silent for two days (bounded memory)."""
        self.last_sweep = now
        for cid in sorted(self.incidents):
            alert = self.policy.resolve_if_quiet(self.incidents[cid], now, "cluster", cid)
            if alert is not None:
                out.append(alert)
                del self.incidents[cid]
                self.member_of = {m: c for m, c in self.member_of.items() if c != cid}
        if now // 3_600_000 == self.last_forget_hour:  # the full scan once per event-time hour
            return
        self.last_forget_hour = now // 3_600_000
        stale = [a for a, s in self.summaries.items() if now - s.ts_ms > 2 * 86_400_000]
        for a in stale:
            self._forget(a)

    def _forget(self, a: str) -> None:
        self.summaries.pop(a, None)
        for k in self.keysets.pop(a, ()):
            lst = self.index.get(k)
            if lst and a in lst:
                lst.remove(a)
        for b in self.adj.pop(a, {}):
            self.adj.get(b, {}).pop(a, None)
        self.last_eval.pop(a, None)
        self.comp_eval.pop(a, None)

    def apply_feedback(self, fb: FeedbackRow) -> None:
        """Allowlisted accounts leave every cluster; a false positive raises that cluster's threshold."""
        if fb.verdict == "allowlist" and fb.account_id:
            self.allow.add(fb.account_id)
            self._forget(fb.account_id)
        elif fb.verdict == "false_positive":
            for cid, inc in self.incidents.items():
                if inc.alert_id == fb.alert_id:
                    self.bias[cid] = min(0.45, self.bias.get(cid, 0.0) + self.config.fp_threshold_step)

    def snapshot(self) -> bytes:
        return orjson.dumps(
            {
                "summaries": list(self.summaries.values()),  # dataclasses: orjson serializes them natively
                "keysets": self.keysets,  # sorted tuples: JSON arrays
                "index": self.index,
                "adj": self.adj,
                "last_eval": self.last_eval,
                "comp_eval": self.comp_eval,
                "member_of": self.member_of,
                "incidents": {c: i.dump() for c, i in self.incidents.items()},
                "bias": self.bias,
                "allow": sorted(self.allow),
                "last_sweep": self.last_sweep,
                "last_forget_hour": self.last_forget_hour,
            }
        )

    def restore(self, blob: bytes) -> None:
        d = orjson.loads(blob)
        self.summaries = {s["account_id"]: AccountSummary.from_dict(s) for s in d["summaries"]}
        self.keysets = {a: tuple(sorted(intern(x) for x in k)) for a, k in d["keysets"].items()}
        self.index = {intern(k): v for k, v in d["index"].items()}
        self.adj, self.last_eval = d["adj"], d["last_eval"]
        self.comp_eval = d.get("comp_eval", {})
        self.member_of, self.bias, self.last_sweep = d["member_of"], d["bias"], d["last_sweep"]
        self.incidents = {c: Incident.load(i) for c, i in d["incidents"].items()}
        self.allow = set(d["allow"])
        self.last_forget_hour = d.get("last_forget_hour", 0)
