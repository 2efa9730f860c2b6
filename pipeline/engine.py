"""The detection core the Kafka worker drives (and ``evaluate`` replays): plain Python, event time only.

``add`` is the hot path: a dict lookup, then ``counting.count`` (replay/duplicate
checks and counter increments in the account's minute bucket). Scoring (features, River) runs at
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

from sys import intern

from pipeline.account import AccountState
from pipeline.alerts import DETECTING, IncidentPolicy, severity_of
from pipeline.changelog import ShardStates
from pipeline.contract import Event
from pipeline.counting import COT_CUSUM_LEVEL, DUE, DUPLICATE, LATE, REPLAYED, count
from pipeline.detection import HARVEST_TERM, DetectionConfig
from pipeline.features import TAU_LONG_MS, feature_vector
from pipeline.records import FeedbackRow, Outputs
from pipeline.scoring import DETECTOR, scoring_records
from pipeline.shard import FREEZE_SWEEP_MS, Shard
from pipeline.verdicts import Verdicts


class Engine(ShardStates):
    """Per-account detection over any number of shards (Kafka partitions)."""

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.policy = IncidentPolicy.for_config(config, DETECTOR)
        self._shards: dict[int, Shard] = {}
        self._out = Outputs()
        self.verdicts = Verdicts(config.fp_threshold_step)
        self.duplicates = self.replayed = self.late = self.evicted = self.frozen = 0
        self._freeze_ms = config.freeze_idle_ms
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
        a = event.account_id
        st = sh.accounts.get(a) or self._thaw(sh, a) or self._new_account(sh, event, shard)
        outcome = count(sh, st, event, offset, self._lateness, self._min_events, self._force_min)
        if outcome == DUE:
            self._score(sh, st, ts)
        elif outcome == REPLAYED:
            self.replayed += 1
        elif outcome == DUPLICATE:
            self.duplicates += 1
        elif outcome == LATE:
            self.late += 1

    # -- per account-minute / per score ---------------------------------------
    def _new_account(self, sh: Shard, ev: Event, shard: int) -> AccountState:
        # Interned: the cluster detector's copies (decoded from summaries) then share these strings.
        st = AccountState(intern(ev.account_id), shard, ev.account_created_ms, ev.ts_ms)
        st.org_id = intern(ev.org_id)
        st.next_score_ms = ev.ts_ms + self.config.score_interval_ms
        st.force_ms = ev.ts_ms + self.config.max_score_gap_ms
        self.verdicts.apply(st)
        sh.accounts[ev.account_id] = st
        return st

    def _thaw(self, sh: Shard, account_id: str) -> AccountState | None:
        st = sh.thaw(account_id)
        if st is not None:
            self.verdicts.apply(st)  # restored frozen: verdicts are carried on at the thaw (a no-op otherwise)
        return st

    def _score(self, sh: Shard, st: AccountState, now: int) -> None:
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
                self.verdicts.remember_alert(inc.alert_id, a)
            if alert is not None:
                self._out.alerts.append(alert)
        row, summary = scoring_records(st, now, score, sev, harvest, f, sh.scorer.pop, reasons)
        self._out.scores.append(row)
        self._out.summaries.append(summary)
        self._after_scoring(sh, st, now, score)

    def _after_scoring(self, sh: Shard, st: AccountState, now: int, score: float) -> None:
        """Bookkeeping of every scoring: pending events consumed, the next score times."""
        cfg = self.config
        st.pending = 0
        sh.pending.pop(st.account_id, None)
        st.last_score_ms, st.last_score = now, score
        # Every interval while an account is near or over the threshold (time to detect, escalation
        # to a detection); every ``detected_score_every`` once its incident reports a detection (the
        # alert is out: escalating further, updating and resolving keep to that pace); back off to 5
        # intervals and a long forced gap while it looks clearly ordinary.
        inc = st.incident
        hot = score >= self._ordinary_below or inc is not None or st.cusum >= COT_CUSUM_LEVEL
        detected = inc is not None and inc.severity in DETECTING
        every = cfg.detected_score_every if detected else 1 if hot else 5
        st.next_score_ms = now + cfg.score_interval_ms * every
        st.force_ms = now + (cfg.max_score_gap_ms if hot else cfg.ordinary_score_gap_ms)
        sh.mark(st)

    def _tick(self, sh: Shard, now: int) -> None:
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
                sh.mark(st)
        for st in sh.due(b, self._force_min):
            self._score(sh, st, b)
        if b // 3_600_000 != sh.evict_hour:
            sh.evict_hour = b // 3_600_000
            self.evicted += sh.evict_idle(b)
        if self._freeze_ms and b // FREEZE_SWEEP_MS != sh.freeze_slot:
            sh.freeze_slot = b // FREEZE_SWEEP_MS
            self.frozen += sh.freeze_idle(b)
        sh.forget_recent(b - self.config.allowed_lateness_ms - 60_000)

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
        for sh in self._shards.values():
            sh.drain_aggregates(out.aggregates)
        return out

    def apply_feedback(self, fb: FeedbackRow) -> None:
        """Analyst verdicts: allowlist (never alert), false positive (higher threshold, learnable),
        true positive (never learned as normal)."""
        a = self.verdicts.record(fb)
        if not a:
            return
        for sh in self._shards.values():
            st = sh.accounts.get(a) or sh.thaw(a)
            if st is None:
                continue
            self.verdicts.apply(st)
            if fb.verdict != "true_positive" and st.incident is not None:
                alert = self.policy.resolve_if_quiet(
                    st.incident, st.incident.last_hot_ms + self.config.quiet_ms, "account", a
                )
                if alert is not None:
                    self._out.alerts.append(alert)
                st.incident = None
                sh.open.pop(a, None)
            sh.mark(st)
