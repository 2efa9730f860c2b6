"""One partition's detection state: its accounts, clocks and population model, and how it persists.

A ``Shard`` holds everything ``Engine`` keeps for one Kafka partition: the accounts (``AccountState``;
idle ones frozen in ``ColdAccounts``), the closed minute buckets still held for late events, the
indexes the engine's ticks walk (pending scorings, open incidents), the first-seen time of each
model and the population ``Scorer``. It also owns the minute bookkeeping of an account (roll, late
events, model and infrastructure changes) and the changelog form of all that: one record per account
plus one shard record (``SHARD_KEY``).
"""

from __future__ import annotations

from array import array
from sys import intern

import orjson

from pipeline.account import CAT0, COT, ERR, EV, IN, LAT, NV, OUT, THR, TOOL, AccountState, MinuteBucket, counts
from pipeline.cold import ColdAccounts
from pipeline.contract import CATEGORY_INDEX, Event
from pipeline.detection import DetectionConfig, Scorer
from pipeline.features import fold
from pipeline.records import AggregateRow

_I_PREV_TS, _I_PENDING, _I_INCIDENT = (AccountState.__slots__.index(n) for n in ("prev_ts", "pending", "incident"))
SHARD_KEY = "\x00shard"  # changelog key of the shard-level state (population model, clocks)
FREEZE_SWEEP_MS = 120_000  # event time between two sweeps freezing idle accounts (scripts/freeze_scan.py)


class Shard:
    """The state of one partition (see the module docstring)."""

    __slots__ = (
        "config",
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
        "cold",
        "freeze_slot",
    )

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        self.accounts: dict[str, AccountState] = {}
        self.scorer = Scorer(config)
        self.clock = 0
        self.next_boundary = 0
        self.recent: dict[int, dict[str, MinuteBucket]] = {}  # closed buckets by minute, for late events
        self.pending: dict[str, AccountState] = {}
        self.open: dict[str, AccountState] = {}
        # Ids of the accounts changed since the last checkpoint (ids, not states: an account frozen
        # meanwhile is not kept warm until the checkpoint writes its frozen record).
        self.dirty: list[str] = []
        self.agg_dirty: list[MinuteBucket] = []
        self.models: dict[str, int] = {}  # model -> first seen (event time) on this shard
        self.start_ms = 0
        self.evict_hour = 0  # event-time hour of the last idle-account sweep
        self.evicted: list[str] = []  # evicted since the last checkpoint (changelog tombstones)
        self.snapping: list[str] = []  # ids queued by begin_checkpoint, still to dump (dirty stays set)
        self.cold = ColdAccounts()  # idle accounts, held compactly (``freeze_idle``)
        self.freeze_slot = 0  # event-time slot (FREEZE_SWEEP_MS) of the last freezing sweep

    def mark(self, st: AccountState) -> None:
        """Queue ``st`` for the next checkpoint (once while it stays warm)."""
        if not st.dirty:
            st.dirty = True
            self.dirty.append(st.account_id)

    # -- an account's minutes ----------------------------------------------------
    def roll(self, st: AccountState, minute: int) -> None:
        """Close the account's bucket (folded into its features, held for late events); open ``minute``."""
        old = st.bucket
        fold(st, minute)
        m = old.minute_ms
        held = self.recent.get(m)
        if held is None:
            held = self.recent[m] = {}
        held[st.account_id] = old
        st.bucket = MinuteBucket(st.account_id, minute, st.last_model)
        if st.model_new and st.fold_ms - self.models.get(st.last_model, 0) > self.config.new_model_window_ms:
            st.model_new = False

    def late(self, st: AccountState, ev: Event, minute: int) -> None:
        """Late event: counted in the aggregate of its minute if still held, or if within the lateness
        (a minute the account had no event in gets a bucket of its own); never in rate features."""
        st.late += 1
        b = st.bucket if minute == st.bucket.minute_ms else self.recent.get(minute, {}).get(st.account_id)
        if b is None:
            if ev.ts_ms < self.clock - self.config.allowed_lateness_ms:
                return
            b = MinuteBucket(st.account_id, minute)  # held (and checkpointed) like any closed bucket
            self.recent.setdefault(minute, {})[st.account_id] = b
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
            b.models = (*b.models, intern(ev.model))
        if not b.dirty:
            b.dirty = True
            self.agg_dirty.append(b)

    def model_change(self, st: AccountState, model: str, ts: int) -> None:
        """The account's model changed: is it new on this shard (first seen > 1 h after the shard's
        first event, within the new-model window)?"""
        first = self.models.get(model)
        if first is None:
            first = self.models[model] = ts
            if not self.start_ms:
                self.start_ms = ts
        st.model_new = first - self.start_ms > 3_600_000 and ts - first <= self.config.new_model_window_ms
        if not st.model_new:
            st.has_old_model = True
        st.last_model = model = intern(model)  # one string per model name, not one per account
        if model not in st.bucket.models and len(st.bucket.models) < 8:
            st.bucket.models = (*st.bucket.models, model)

    def evict_idle(self, now: int) -> int:
        """Forget accounts idle for ``idle_evict_ms`` of event time (hourly sweep, deterministic); returns
        how many.

        By then their buckets were emitted, their last scoring forced (fewer than ``force_min_events``
        events may never be scored: too few to carry evidence) and any incident resolved
        (``quiet_ms``); decayed features are ~0. A returning account starts afresh (the engine keeps
        feedback and re-applies it)."""
        horizon = now - self.config.idle_evict_ms
        gone = [
            a
            for a, st in self.accounts.items()
            if st.prev_ts < horizon and st.bucket.minute_ms < horizon and st.incident is None
        ]
        for a in gone:
            self._drop(a)
        frozen = self.cold.idle_before(horizon)  # frozen accounts have no incident; bucket <= last event
        for a in frozen:
            self.cold.forget(a)
        self.evicted.extend(gone)
        self.evicted.extend(frozen)
        return len(gone) + len(frozen)

    def freeze_idle(self, now: int) -> int:
        """Freeze accounts idle for ``freeze_idle_ms`` of event time (``cold``); returns how many.

        Only accounts the engine's ticks have nothing to do for (``_freezable``). An account changed
        since the last checkpoint may freeze: the checkpoint writes its frozen record."""
        horizon = now - self.config.freeze_idle_ms
        freezable = self._freezable
        idle = [st for st in self.accounts.values() if st.prev_ts < horizon and freezable(st.incident, st.pending)]
        for st in idle:
            self._drop(st.account_id)  # an incident resolved since the last tick leaves ``open`` too
            self.cold.freeze(st)
        return len(idle)

    def _drop(self, account_id: str) -> None:
        """Forget an account's warm state and the indexes that point at it (a no-op if it has none)."""
        self.accounts.pop(account_id, None)
        self.pending.pop(account_id, None)
        self.open.pop(account_id, None)

    def _freezable(self, incident: object, pending: int) -> bool:
        """No open incident, and fewer pending events than a forced scoring needs (none is due while
        frozen): the rule for the sweep and for a restore alike."""
        return incident is None and pending < self.config.force_min_events

    def thaw(self, account_id: str) -> AccountState | None:
        """A frozen account back in ``accounts`` (and re-queued if it had pending events); None if
        it is not frozen."""
        st = self.cold.thaw(account_id)
        if st is not None:
            self.accounts[st.account_id] = st
            if st.pending:
                self.pending[st.account_id] = st
        return st

    def due(self, boundary: int, least: int) -> list[AccountState]:
        """Accounts whose forced scoring is due at ``boundary`` (``least`` new events or more), in
        (forced time, account) order."""
        return sorted(
            (s for s in self.pending.values() if s.force_ms <= boundary and s.pending >= least),
            key=lambda s: (s.force_ms, s.account_id),
        )

    def forget_recent(self, cutoff: int) -> None:
        """Drop the held closed buckets of minutes before ``cutoff``."""
        recent = self.recent
        for m in [m for m in recent if m < cutoff]:
            del recent[m]

    def drain_aggregates(self, rows: list[AggregateRow]) -> None:
        """Append a row for every bucket changed since the last drain (cumulative, versioned by count)."""
        append = rows.append
        for b in self.agg_dirty:
            b.dirty = False
            v = counts(b.v)
            n = v[0]
            append(AggregateRow(b.account_id, b.minute_ms, n, n, v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                                float(v[LAT]), v[CAT0:NV], list(b.models)))  # fmt: skip
        self.agg_dirty = []

    # -- changelog ---------------------------------------------------------------
    def begin_checkpoint(self) -> list[tuple[str, bytes]]:
        """Tombstones and the shard record as they are now; the accounts changed since the last
        checkpoint are queued for ``checkpoint_accounts``."""
        accounts, cold = self.accounts, self.cold
        # tombstones: restore forgets them
        out = [(a, b"") for a in self.evicted if a not in accounts and a not in cold]
        self.evicted = []
        self.snapping.extend(self.dirty)  # their dirty flag stays set: a change meanwhile does not queue twice
        self.dirty = []
        recent = [[a, m, counts(b.v), list(b.models)] for m, held in self.recent.items() for a, b in held.items()]
        pending = list(self.pending) + sorted(cold.pending)
        head = [self.clock, self.next_boundary, self.models, self.start_ms, pending, recent,
                self.evict_hour]  # fmt: skip
        out.append((SHARD_KEY, orjson.dumps(head) + b"\n" + self.scorer.snapshot()))
        return out

    def checkpoint_accounts(self, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` queued accounts, each as it is now (never older than when it was queued:
        a later state covers later offsets too, and a replay skips what an account already holds)."""
        if not self.snapping or limit <= 0:
            return []
        chunk = self.snapping[-limit:]
        del self.snapping[-limit:]
        accounts, cold = self.accounts, self.cold
        out = []
        # An id can be queued twice (frozen, thawed and changed again before the checkpoint): each
        # account is written once per chunk.
        for a in dict.fromkeys(chunk):
            st = accounts.get(a)
            if st is not None:
                st.dirty = False
                out.append((a, _compact(orjson.dumps(st.dump()))))
            elif (record := cold.record(a)) is not None:  # frozen since: as frozen
                out.append((a, record))
        return out

    def restore(self, key: str, blob: bytes) -> AccountState | None:
        """Load one changelog record; returns the account it restored warm (None for the shard record,
        a tombstone or an account restored frozen: no open incident, nothing due)."""
        if key == SHARD_KEY:
            head, _, model = blob.partition(b"\n")
            self.clock, self.next_boundary, self.models, self.start_ms, pending, recent, *rest = orjson.loads(head)
            self.evict_hour = rest[0] if rest else 0
            self.scorer.restore(model)
            self.recent = {}
            for a, m, v, models in recent:
                bk = MinuteBucket(a, m)
                bk.v, bk.models = array("d", v), tuple(intern(x) for x in models)
                self.recent.setdefault(m, {})[a] = bk
            self.pending = {a: self.accounts[a] for a in pending if a in self.accounts}
            self.cold.pending = {a for a in pending if a in self.cold}
            return None
        # A record replaces whatever is held, so in any record order the indexes follow the account's
        # latest state (never a replaced object); a tombstone (evicted account) leaves nothing.
        self.cold.forget(key)
        self._drop(key)
        if not blob:
            return None
        d = orjson.loads(blob)
        if self.config.freeze_idle_ms and self._freezable(d[_I_INCIDENT], d[_I_PENDING]):
            # held frozen, as a running shard holds idle accounts: a restart needs no more memory than
            # the run did (an account still active thaws at its next event)
            self.cold.hold(key, d[_I_PREV_TS], d[_I_PENDING], blob)
            return None
        st = AccountState.load(d)
        self.accounts[key] = st
        if st.pending:
            self.pending[key] = st
        if st.incident is not None:
            self.open[key] = st
        return st


def _compact(blob: bytes) -> bytes:
    """A copy of ``blob`` in a block of its own size.

    orjson writes into a larger buffer and shrinks it in place; snapshots held by the
    thousand (a checkpoint chunk, a revocation) then pin that many oversized blocks.
    """
    return memoryview(blob).tobytes()
