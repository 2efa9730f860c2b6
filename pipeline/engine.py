"""The detection core the Kafka worker drives (and ``evaluate`` replays): plain Python, event time only.

``add`` is the hot path: a dict lookup, replay/duplicate checks and counter
increments in the account's minute bucket. Scoring (features, River) runs at
most once per account per ``score_interval`` at deterministic event-time
points: when an account's own event reaches its next score time with enough new
events, or at a shard boundary (multiples of ``score_interval``) for accounts
whose forced gap has passed with ``force_min_events`` new events. A scoring that
finds a clearly ordinary account which emitted rows recently is "screened": no
reasons, learning, score row or summary. Boundaries are crossed by the shard's own
events (and by ``advance``), so for one event order the outputs do not depend
on how the stream was batched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from sys import intern
from zlib import crc32

import orjson

from pipeline.alerts import IncidentPolicy, severity_of
from pipeline.clusters import AccountSummary, ClusterDetector
from pipeline.contract import CATEGORY_INDEX, Alert, Event, Reason
from pipeline.detection import HARVEST_TERM, DetectionConfig, Scorer
from pipeline.features import (
    CAT0,
    COT,
    ERR,
    EV,
    GAP,
    GAP2,
    IN,
    LAT,
    NAMES,
    NEAR,
    NEWM,
    NGAP,
    NOVEL,
    NV,
    OUT,
    TAU_LONG_MS,
    THR,
    TOOL,
    TREP,
    AccountState,
    MinuteBucket,
    feature_vector,
    fold,
)
from pipeline.records import AggregateRow, FeedbackRow, ScoreRow

CAT_SLOT = {c: CAT0 + i for c, i in CATEGORY_INDEX.items()}
SHARD_KEY = "\x00shard"  # changelog key of the shard-level state (population model, clocks)
# Sequential evidence: a chain-of-thought CUSUM (+0.6 per CoT event, -0.4 otherwise, in tenths) at or
# above this level lets an account be scored every interval with any new event instead of 10.
COT_CUSUM_LEVEL = 15
_NAMES = list(NAMES)


@dataclass(slots=True)
class Outputs:
    """Everything produced since the previous ``take_outputs``."""

    alerts: list[Alert] = field(default_factory=list)
    aggregates: list[AggregateRow] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)
    summaries: list[AccountSummary] = field(default_factory=list)


class _Shard:
    __slots__ = (
        "accounts",
        "scorer",
        "clock",
        "next_boundary",
        "recent",
        "pending",
        "open",
        "dirty",
        "agg_dirty",
        "models",
        "start_ms",
        "evict_hour",
        "evicted",
        "snapping",
    )

    def __init__(self, config: DetectionConfig) -> None:
        self.accounts: dict[str, AccountState] = {}
        self.scorer = Scorer(config)
        self.clock = 0
        self.next_boundary = 0
        self.recent: dict[int, dict[str, MinuteBucket]] = {}  # closed buckets by minute, for late events
        self.pending: dict[str, AccountState] = {}
        self.open: dict[str, AccountState] = {}
        self.dirty: list[AccountState] = []
        self.agg_dirty: list[MinuteBucket] = []
        self.models: dict[str, int] = {}  # model -> first seen (event time) on this shard
        self.start_ms = 0
        self.evict_hour = 0  # event-time hour of the last idle-account sweep
        self.evicted: list[str] = []  # evicted since the last checkpoint (changelog tombstones)
        self.snapping: list[AccountState] = []  # queued by begin_checkpoint, still to dump (dirty stays set)


def ip_prefix(ip: str) -> str:
    """Network prefix of an address: /24 for IPv4, /48 for IPv6.

    >>> ip_prefix("10.1.2.3"), ip_prefix("2001:db8:1:2::5")
    ('10.1.2.0/24', '2001:db8:1::/48')
    """
    if ":" in ip:
        return ":".join(ip.split(":")[:3]) + "::/48"
    return ip.rsplit(".", 1)[0] + ".0/24"


class Engine:
    """Per-account detection over any number of shards (Kafka partitions)."""

    ALERT_INDEX_MAX = 200_000  # alert ids kept for feedback by alert id (bounded: the worker runs for months)

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.policy = IncidentPolicy.for_config(config, "account-behaviour")
        self._shards: dict[int, _Shard] = {}
        self._out = Outputs()
        self._allow: set[str] = set()
        self._fp: dict[str, float] = {}
        self._confirmed: set[str] = set()
        self._alert_account: dict[str, str] = {}
        self.duplicates = self.replayed = self.late = self.evicted = 0
        self._lateness = config.allowed_lateness_ms
        self._min_events = config.min_events_to_score
        self._force_min = config.force_min_events
        self._ordinary_below = 0.2 * config.alert_threshold  # scores under this look clearly ordinary

    # -- hot path -------------------------------------------------------------
    def add(self, event: Event, shard: int, offset: int) -> None:
        """Apply one event (skips Kafka replays and gateway retries)."""
        sh = self._shards.get(shard) or self._new_shard(shard)
        ts = event.ts_ms
        if ts >= sh.next_boundary:
            self._tick(sh, ts)
        if ts > sh.clock:
            sh.clock = ts
        st = sh.accounts.get(event.account_id) or self._new_account(sh, event, shard)
        if offset <= st.last_offset:
            self.replayed += 1
            return
        st.last_offset = offset
        if not st.dirty:
            st.dirty = True
            sh.dirty.append(st)
        h = crc32(event.event_id.encode()) or 1
        ids = st.ids
        ring = ids.ring
        if h in ring:
            st.dups += 1
            self.duplicates += 1
            return
        pos = ids.pos
        ring[pos] = h
        ids.pos = (pos + 1) & 15
        st.events += 1
        b = st.bucket
        minute = ts - ts % 60_000
        if minute != b.minute_ms:
            if minute > b.minute_ms and ts >= sh.clock - self._lateness:
                self._roll(sh, st, minute)
                b = st.bucket
            else:
                self._late(sh, st, event, minute)
                return
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
            tpl.add(th)
            t1 = st.t1
            if th == t1:
                v[TREP] += 1
            else:
                if th == st.t2:
                    v[TREP] += 1
                st.t2 = t1
                st.t1 = th
        else:
            tpl.total += 1
        if event.model != st.last_model:
            self._model_change(sh, st, event.model, ts)
        if st.model_new:
            v[NEWM] += 1
        ip = event.ip
        if ip and ip != st.last_ip:
            st.last_ip = ip
            st.ips.add(intern(ip_prefix(ip)))
        if event.user_agent != st.last_ua or event.asn != st.last_asn:
            self._infra_change(st, event)
        pay = event.payment_fingerprint
        if pay and pay != st.last_pay:
            st.last_pay = pay
            st.pays.add(intern(pay))
        n = st.pending + 1
        st.pending = n
        if n == 1:
            sh.pending[st.account_id] = st
        if ts >= st.next_score_ms and (
            n >= self._min_events or st.cusum >= COT_CUSUM_LEVEL or (ts >= st.force_ms and n >= self._force_min)
        ):
            self._score(sh, st, ts)

    # -- per account-minute / per score ---------------------------------------
    def _new_shard(self, shard: int) -> _Shard:
        sh = self._shards[shard] = _Shard(self.config)
        return sh

    def _new_account(self, sh: _Shard, ev: Event, shard: int) -> AccountState:
        # Interned: the cluster detector's copies (decoded from summaries) then share these strings.
        st = AccountState(intern(ev.account_id), shard, ev.account_created_ms, ev.ts_ms)
        st.org_id = intern(ev.org_id)
        st.next_score_ms = ev.ts_ms + self.config.score_interval_ms
        st.force_ms = ev.ts_ms + self.config.max_score_gap_ms
        self._apply_known_feedback(st)
        sh.accounts[ev.account_id] = st
        return st

    def _apply_known_feedback(self, st: AccountState) -> None:
        a = st.account_id
        st.allowlisted = st.allowlisted or a in self._allow
        st.confirmed = st.confirmed or a in self._confirmed
        st.fp_bias = max(st.fp_bias, self._fp.get(a, 0.0))

    def _roll(self, sh: _Shard, st: AccountState, minute: int) -> None:
        old = st.bucket
        fold(st, minute)
        m = old.minute_ms
        held = sh.recent.get(m)
        if held is None:
            held = sh.recent[m] = {}
        held[st.account_id] = old
        st.bucket = MinuteBucket(st.account_id, minute, st.last_model)
        if st.model_new and st.fold_ms - sh.models.get(st.last_model, 0) > self.config.new_model_window_ms:
            st.model_new = False

    @staticmethod
    def _infra_change(st: AccountState, event: Event) -> None:
        st.last_ua, st.last_asn = event.user_agent, event.asn
        st.asn_ua.add(intern(f"{event.asn}|{event.user_agent[:64]}"))

    def _late(self, sh: _Shard, st: AccountState, ev: Event, minute: int) -> None:
        """Late event: counted in the aggregate of its minute if still held, never in rate features."""
        self.late += 1
        st.late += 1
        b = st.bucket if minute == st.bucket.minute_ms else sh.recent.get(minute, {}).get(st.account_id)
        if b is None:
            return
        v = b.v
        v[EV] += 1
        v[IN] += ev.input_tokens
        v[OUT] += ev.output_tokens
        v[ERR] += ev.status >= 500
        v[THR] += ev.status == 429
        v[COT] += ev.cot
        v[TOOL] += ev.tools > 0
        if ev.category:
            v[CAT0 + CATEGORY_INDEX[ev.category]] += 1
        v[LAT] += ev.latency_ms
        if ev.model not in b.models and len(b.models) < 8:
            b.models.append(ev.model)
        if not b.dirty:
            b.dirty = True
            sh.agg_dirty.append(b)

    def _model_change(self, sh: _Shard, st: AccountState, model: str, ts: int) -> None:
        first = sh.models.get(model)
        if first is None:
            first = sh.models[model] = ts
            if not sh.start_ms:
                sh.start_ms = ts
        st.model_new = first - sh.start_ms > 3_600_000 and ts - first <= self.config.new_model_window_ms
        if not st.model_new:
            st.has_old_model = True
        st.last_model = model = intern(model)  # one string per model name, not one per account
        if model not in st.bucket.models and len(st.bucket.models) < 8:
            st.bucket.models.append(model)

    def _score(self, sh: _Shard, st: AccountState, now: int) -> None:
        cfg = self.config
        f = feature_vector(st, now)
        assessed = sh.scorer.assess(st, f)
        score = assessed.score
        if st.incident is None and score < self._ordinary_below and now - st.row_ms < cfg.row_gap_ms:
            self._after_scoring(sh, st, now, score)  # screened: clearly ordinary, reported recently: no rows
            return
        reasons = sh.scorer.explain(st, f, assessed)
        harvest = assessed.evidence[HARVEST_TERM]
        st.row_ms = now
        thr = min(0.95, cfg.alert_threshold + st.fp_bias)
        sev = "" if st.allowlisted else severity_of(score, thr)
        a = st.account_id
        if not st.allowlisted:
            start = max(st.first_ms, now - TAU_LONG_MS)
            inc, alert = self.policy.observe(
                st.incident, "account", a, [a], score, reasons, now, st.events, start, thr
            )
            st.incident = inc
            if inc is not None:
                sh.open[a] = st
                self._remember_alert(inc.alert_id, a)
            if alert is not None:
                self._out.alerts.append(alert)
        au = st.asn_ua.examples
        top = st.tpl.top(3)
        self._out.scores.append(
            ScoreRow(
                a,
                now,
                score,
                sev,
                "account-behaviour",
                _NAMES,
                f,
                list(sh.scorer.pop),
                _contributions(reasons),
                st.org_id,
                list(st.ips.examples),
                [int(x.split("|", 1)[0]) for x in au],
                [x.split("|", 1)[1] for x in au],
                list(st.pays.examples),
                top,
                list(st.bucket.models),
            )
        )
        self._out.summaries.append(
            AccountSummary(
                a,
                now,
                st.created_ms,
                st.first_ms,
                st.org_id,
                score,
                harvest,
                st.events,
                list(st.ips.examples),
                list(au),
                list(st.pays.examples),
                top,
                st.act_mask,
                st.act_slot,
                st.allowlisted,
            )
        )
        self._after_scoring(sh, st, now, score)

    def _after_scoring(self, sh: _Shard, st: AccountState, now: int, score: float) -> None:
        """Bookkeeping of every scoring: pending events consumed, the next score times."""
        cfg = self.config
        st.pending = 0
        sh.pending.pop(st.account_id, None)
        st.last_score_ms, st.last_score = now, score
        # Every interval while an account is near or over the threshold (time to detect, severity
        # escalation); back off to 5 intervals and a long forced gap while it looks clearly ordinary.
        hot = score >= self._ordinary_below or st.incident is not None or st.cusum >= COT_CUSUM_LEVEL
        st.next_score_ms = now + cfg.score_interval_ms * (1 if hot else 5)
        st.force_ms = now + (cfg.max_score_gap_ms if hot else cfg.ordinary_score_gap_ms)
        if not st.dirty:
            st.dirty = True
            sh.dirty.append(st)

    def _tick(self, sh: _Shard, now: int) -> None:
        """Shard boundary: resolve quiet incidents, score overdue accounts, forget old buckets."""
        interval = self.config.score_interval_ms
        b = now - now % interval
        sh.next_boundary = b + interval
        sh.scorer.tick()
        for a in sorted(sh.open):
            st = sh.open[a]
            if st.incident is None:
                del sh.open[a]
                continue
            alert = self.policy.resolve_if_quiet(st.incident, b, "account", a)
            if alert is not None:
                self._out.alerts.append(alert)
                st.incident = None
                del sh.open[a]
                if not st.dirty:
                    st.dirty = True
                    sh.dirty.append(st)
        least = self._force_min
        due = sorted(
            (s for s in sh.pending.values() if s.force_ms <= b and s.pending >= least),
            key=lambda s: (s.force_ms, s.account_id),
        )
        for st in due:
            self._score(sh, st, b)
        if b // 3_600_000 != sh.evict_hour:
            sh.evict_hour = b // 3_600_000
            self._evict_idle(sh, b)
        cutoff = b - self.config.allowed_lateness_ms - 60_000
        recent = sh.recent
        for m in [m for m in recent if m < cutoff]:
            del recent[m]

    def _evict_idle(self, sh: _Shard, now: int) -> None:
        """Forget accounts idle for ``idle_evict_ms`` of event time (hourly sweep, deterministic).

        By then their buckets were emitted, their last scoring forced (fewer than ``force_min_events``
        events may never be scored: too few to carry evidence) and any incident resolved
        (``quiet_ms``); decayed features are ~0. A returning account
        starts afresh (feedback is kept on the engine and re-applied)."""
        horizon = now - self.config.idle_evict_ms
        gone = [
            a
            for a, st in sh.accounts.items()
            if st.prev_ts < horizon and st.bucket.minute_ms < horizon and st.incident is None
        ]
        for a in gone:
            del sh.accounts[a]
            sh.open.pop(a, None)
            sh.pending.pop(a, None)
        sh.evicted.extend(gone)
        self.evicted += len(gone)

    # -- worker API -------------------------------------------------------------
    def advance(self, shard: int, watermark_ms: int) -> None:
        """Event-time tick for one shard (watermark = no older events expected)."""
        sh = self._shards.get(shard) or self._new_shard(shard)
        if watermark_ms >= sh.next_boundary:
            self._tick(sh, watermark_ms)
        sh.clock = max(sh.clock, watermark_ms)

    def take_outputs(self) -> Outputs:
        """Drain the alerts, aggregates, scores and summaries produced since the last call."""
        out, self._out = self._out, Outputs()
        rows = out.aggregates
        append = rows.append
        for sh in self._shards.values():
            for b in sh.agg_dirty:
                b.dirty = False
                v = b.v
                n = v[0]
                append(AggregateRow(b.account_id, b.minute_ms, n, n, v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                    float(v[LAT]), v[CAT0:NV], b.models[:]))  # fmt: skip
            sh.agg_dirty = []
        return out

    def _remember_alert(self, alert_id: str, account_id: str) -> None:
        """Index an incident's alert id for feedback that names only the alert; the oldest of more
        than ``ALERT_INDEX_MAX`` are forgotten (feedback naming the account still applies)."""
        index = self._alert_account
        if alert_id in index:
            return
        index[alert_id] = account_id
        if len(index) > self.ALERT_INDEX_MAX:
            del index[next(iter(index))]

    def apply_feedback(self, fb: FeedbackRow) -> None:
        """Analyst verdicts: allowlist (never alert), false positive (higher threshold, learnable),
        true positive (never learned as normal)."""
        a = fb.account_id or self._alert_account.get(fb.alert_id, "")
        if not a:
            return
        if fb.verdict == "allowlist":
            self._allow.add(a)
        elif fb.verdict == "false_positive":
            self._fp[a] = min(0.45, self._fp.get(a, 0.0) + self.config.fp_threshold_step)
        elif fb.verdict == "true_positive":
            self._confirmed.add(a)
        for sh in self._shards.values():
            st = sh.accounts.get(a)
            if st is None:
                continue
            self._apply_known_feedback(st)
            if fb.verdict != "true_positive" and st.incident is not None:
                alert = self.policy.resolve_if_quiet(
                    st.incident, st.incident.last_hot_ms + self.config.quiet_ms, "account", a
                )
                if alert is not None:
                    self._out.alerts.append(alert)
                st.incident = None
                sh.open.pop(a, None)
            if not st.dirty:
                st.dirty = True
                sh.dirty.append(st)

    def dirty_snapshots(self, shard: int) -> list[tuple[str, bytes]]:
        """(account id, state) for accounts changed since the last call, plus the shard record (last)."""
        head = self.begin_checkpoint(shard)
        sh = self._shards.get(shard)
        accounts = self.checkpoint_accounts(shard, len(sh.snapping)) if sh is not None else []
        return head[:-1] + accounts + head[-1:]

    def begin_checkpoint(self, shard: int) -> list[tuple[str, bytes]]:
        """Start a checkpoint: tombstones and the shard record as they are now; the accounts changed
        since the last checkpoint are queued for ``checkpoint_accounts``."""
        sh = self._shards.get(shard)
        if sh is None:
            return []
        out = [(a, b"") for a in sh.evicted if a not in sh.accounts]  # tombstones: restore forgets them
        sh.evicted = []
        sh.snapping.extend(sh.dirty)  # their dirty flag stays set: a change meanwhile does not queue twice
        sh.dirty = []
        recent = [[a, m, b.v, b.models] for m, held in sh.recent.items() for a, b in held.items()]
        head = [sh.clock, sh.next_boundary, sh.models, sh.start_ms, list(sh.pending), recent, sh.evict_hour]
        out.append((SHARD_KEY, orjson.dumps(head) + b"\n" + sh.scorer.snapshot()))
        return out

    def checkpoint_accounts(self, shard: int, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` queued accounts, each as it is now (never older than when it was queued:
        a later state covers later offsets too, and a replay skips what an account already holds)."""
        sh = self._shards.get(shard)
        if sh is None or not sh.snapping or limit <= 0:
            return []
        chunk = sh.snapping[-limit:]
        del sh.snapping[-limit:]
        accounts = sh.accounts
        out = []
        for st in chunk:
            st.dirty = False
            if accounts.get(st.account_id) is st:
                out.append((st.account_id, _compact(orjson.dumps(st.dump()))))
        return out

    def restore(self, shard: int, account_id: str, blob: bytes) -> None:
        """Load one changelog record (account state or the shard record)."""
        sh = self._shards.get(shard) or self._new_shard(shard)
        if account_id == SHARD_KEY:
            head, _, model = blob.partition(b"\n")
            sh.clock, sh.next_boundary, sh.models, sh.start_ms, pending, recent, *rest = orjson.loads(head)
            sh.evict_hour = rest[0] if rest else 0
            sh.scorer.restore(model)
            sh.recent = {}
            for a, m, v, models in recent:
                bk = MinuteBucket(a, m)
                bk.v, bk.models = v, models
                sh.recent.setdefault(m, {})[a] = bk
            sh.pending = {a: sh.accounts[a] for a in pending if a in sh.accounts}
            return
        if not blob:  # tombstone of an evicted account
            sh.accounts.pop(account_id, None)
            sh.pending.pop(account_id, None)
            sh.open.pop(account_id, None)
            return
        st = AccountState.load(orjson.loads(blob))
        self._apply_known_feedback(st)
        sh.accounts[account_id] = st
        # In any record order the index follows the account's latest state (never a replaced object).
        if st.pending:
            sh.pending[account_id] = st
        else:
            sh.pending.pop(account_id, None)
        if st.incident is not None:
            sh.open[account_id] = st
            self._remember_alert(st.incident.alert_id, account_id)
        else:
            sh.open.pop(account_id, None)

    def drop_shard(self, shard: int) -> None:
        """Partition revoked: forget its state (the changelog has it)."""
        self._shards.pop(shard, None)

    def accounts_tracked(self) -> int:
        return sum(len(sh.accounts) for sh in self._shards.values())


def _compact(blob: bytes) -> bytes:
    """A copy of ``blob`` in a block of its own size.

    orjson writes into a larger buffer and shrinks it in place; snapshots held by the
    thousand (a checkpoint chunk, a revocation) then pin that many oversized blocks.
    """
    return memoryview(blob).tobytes()


def _contributions(reasons: list[Reason]) -> list[float]:
    """One contribution per feature of ``_NAMES`` (0.0 for features that are not among the reasons)."""
    by_name = {r.feature: r.contribution for r in reasons}
    return [by_name.get(name, 0.0) for name in _NAMES]


class OfflineRunner:
    """Engine + ClusterDetector wired exactly like the worker (one partition, offsets = line numbers)."""

    def __init__(self, config: DetectionConfig, drain_every: int = 4096) -> None:
        self.engine = Engine(config)
        self.clusters = ClusterDetector(config)
        self.drain_every = drain_every
        self.n = 0

    def feed(self, event: Event, offset: int) -> list[Alert]:
        self.engine.add(event, 0, offset)
        self.n += 1
        return self.drain() if self.n % self.drain_every == 0 else []

    def drain(self) -> list[Alert]:
        out = self.engine.take_outputs()
        alerts = list(out.alerts)
        for s in out.summaries:
            alerts.extend(self.clusters.add_summary(s))
        return alerts

    def finish(self) -> list[Alert]:
        """Flush: one final tick past the last event so overdue accounts are scored."""
        sh = self.engine._shards.get(0)
        if sh is not None:
            self.engine.advance(0, sh.clock + self.config_gap())
        return self.drain()

    def config_gap(self) -> int:
        return self.engine.config.max_score_gap_ms


def run_offline(events: Iterable[Event], config: DetectionConfig) -> Iterator[Alert]:
    """Replay events (in order) through the core; yields alerts as the worker would emit them."""
    r = OfflineRunner(config)
    for i, ev in enumerate(events):
        yield from r.feed(ev, i)
    yield from r.finish()
