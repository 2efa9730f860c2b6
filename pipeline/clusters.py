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
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.alerts import Alert, Incident, IncidentPolicy, Reason
from pipeline.linking import KIND_WEIGHT, KINDS, AccountSummary, HeldSummary, link_weight

if TYPE_CHECKING:
    from pipeline.detection import DetectionConfig
    from pipeline.records import FeedbackRow

COMPONENT_GAP_MS = 60_000


class ClusterDetector:
    """Finds and tracks clusters; deterministic for a given order of summaries."""

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.policy = IncidentPolicy.for_config(config, "cluster")
        # Each account's last summary, its keys those of every summary so far (``merged``): sorted
        # tuples of the strings the key index shares (a set of 5+ strings takes 728 bytes).
        self.summaries: dict[str, HeldSummary] = {}
        # Kind -> key -> the accounts with that key: an account id alone (most keys never get a
        # second; a list of one takes 64 bytes more), a list from the second, none added past
        # cluster_key_cap + 1 (too common to be evidence).
        self.index: dict[str, dict[str, str | list[str]]] = {kind: {} for kind, _ in KINDS}
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
        self.summaries[a], new = s.merged(self.summaries.get(a))
        cap = self.config.cluster_key_cap
        for (kind, _), keys in zip(KINDS, new, strict=True):
            index = self.index[kind]
            for k in keys:
                held = index.get(k)
                if held is None:
                    index[k] = a
                else:
                    accounts = [held] if isinstance(held, str) else held
                    if len(accounts) <= cap:
                        accounts.append(a)
                        index[k] = accounts
        if any(new) or s.ts_ms - self.last_eval.get(a, 0) >= self.config.cluster_eval_gap_ms:
            self._relink(a)
        if self.adj.get(a):
            self._evaluate(a, s.ts_ms, out)
        return out

    def _relink(self, a: str) -> None:
        s = self.summaries[a]
        self.last_eval[a] = s.ts_ms
        cap = self.config.cluster_key_cap
        cands: set[str] = set()
        for (kind, _), keys in zip(KINDS, s.link_keys(), strict=True):
            get = self.index[kind].get
            for k in keys:
                held = get(k)
                if held is not None:
                    accounts = (held,) if isinstance(held, str) else held
                    if len(accounts) <= cap:
                        cands.update(accounts)
        cands.discard(a)
        probe = [set(keys) for keys in s.link_keys()]  # each candidate's keys are looked up in these
        for b in sorted(cands):
            if b not in self.summaries:
                continue
            w, kinds = link_weight(s, self.summaries[b], probe)
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
        s = self.summaries.pop(a, None)
        for (kind, _), keys in zip(KINDS, s.link_keys() if s is not None else ((),) * 4, strict=True):
            index = self.index[kind]
            for k in keys:
                held = index.get(k)
                if held == a:
                    del index[k]
                elif isinstance(held, list) and a in held:
                    held.remove(a)
                    if len(held) == 1:
                        index[k] = held[0]
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
                "summaries": [s.to_dict() for s in self.summaries.values()],
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
        if "keysets" in d:
            _upgrade(d)
        self.summaries = {}
        for item in d["summaries"]:
            s = AccountSummary.from_dict(item)
            self.summaries[s.account_id] = s.merged(None)[0]  # its keys as sorted tuples again
        self.index = {kind: {intern(k): _held(v) for k, v in d["index"].get(kind, {}).items()} for kind, _ in KINDS}
        self.adj, self.last_eval = d["adj"], d["last_eval"]
        self.comp_eval = d.get("comp_eval", {})
        self.member_of, self.bias, self.last_sweep = d["member_of"], d["bias"], d["last_sweep"]
        self.incidents = {c: Incident.load(i) for c, i in d["incidents"].items()}
        self.allow = set(d["allow"])
        self.last_forget_hour = d.get("last_forget_hour", 0)


def _held(accounts: str | list[str]) -> str | list[str]:
    """An index entry as ``ClusterDetector.index`` holds it: one account alone, more in a list."""
    if isinstance(accounts, str):
        return intern(accounts)
    return intern(accounts[0]) if len(accounts) == 1 else [intern(a) for a in accounts]


def _upgrade(d: dict[str, Any]) -> None:
    """A snapshot from before the index by kind (up to the fifteenth session), in place: key sets
    of "kind:key" strings beside the summaries, one index of such keys to lists of accounts."""
    fields = dict(KINDS)
    for item in d["summaries"]:
        for key in d["keysets"].get(item["account_id"], ()):
            kind, _, k = key.partition(":")
            item[fields[kind]] = [*item[fields[kind]], k]  # the set's keys include the summary's own
    index: dict[str, dict[str, list[str]]] = {kind: {} for kind, _ in KINDS}
    for key, accounts in d["index"].items():
        kind, _, k = key.partition(":")
        if accounts:  # a key whose accounts were all forgotten kept an empty list
            index[kind][k] = accounts
    d["index"] = index
    del d["keysets"]
