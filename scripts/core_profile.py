"""Where the detection core's time goes on the benchmark data (not collected by pytest).

    python scripts/core_profile.py [--events 1000000] [--accounts 100000] [--seed 2024]

Builds the same data as ``distillwatch bench`` (``benchdata.make_data``), then prints: decode
µs/event (best of 5 over 100,000 messages, each decoded event dropped, GC tuned as in the worker);
one offline pass counting minute rolls, scorings (all, and screened: no rows emitted) and the
cluster detector's time per summary; the core's events/s, the cyclic GC's share of the pass, the
pass's resident growth per account, the peak and final number of warm (not frozen) accounts and
the size and cost of the cluster detector's snapshot; then a table of what each operation costs
(timed on up to 20,000 of the accounts the pass left, best of 3) times how often an event needs it,
against the pass's measured µs per event (the rest is ``Engine.add``'s and ``counting.count``'s own
bookkeeping, ticks and draining). The counters wrap engine methods, so the events/s printed here is
a little below ``bench``'s offline figure.
"""

from __future__ import annotations

import gc
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from pipeline import engine as eng  # noqa: E402
from pipeline.account import AccountState  # noqa: E402
from pipeline.benchdata import data_from_cli  # noqa: E402
from pipeline.benchparts import measure_offline, rss_bytes  # noqa: E402
from pipeline.clusters import ClusterDetector  # noqa: E402
from pipeline.detection import DetectionConfig, Scorer  # noqa: E402
from pipeline.features import feature_vector, fold  # noqa: E402
from pipeline.offline import OfflineRunner  # noqa: E402
from pipeline.scoring import scoring_records  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.shard import Shard  # noqa: E402
from pipeline.tuning import tune_gc  # noqa: E402
from pipeline.validation import decode_event  # noqa: E402


def main() -> None:
    data = data_from_cli(__doc__, events=1_000_000, accounts=100_000)
    values = [v for _, v in data.items]
    sample = values[:100_000]
    tune_gc()  # as the worker and the offline pass run; the decoded events are dropped as they go
    best = min(_timed(lambda: _decode_all(sample)) for _ in range(5))
    print(f"decode_event: {best / len(sample) * 1e6:.2f} µs/event (best of 5, {len(sample):,} messages)")

    counts: Counter[str] = Counter()
    for cls, name in ((Shard, "roll"), (eng.Engine, "_score")):
        original = getattr(cls, name)

        def counted(*a: object, _f=original, _n=name) -> object:  # type: ignore[no-untyped-def]
            counts[_n] += 1
            return _f(*a)

        setattr(cls, name, counted)
    add_summary = ClusterDetector.add_summary
    cluster_s = [0.0]

    def timed_summary(*a: object) -> object:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = add_summary(*a)  # type: ignore[arg-type]
        cluster_s[0] += time.perf_counter() - t
        counts["summaries"] += 1
        return out

    ClusterDetector.add_summary = timed_summary  # type: ignore[method-assign]
    explain = Scorer.explain

    def explained(*a: object) -> object:  # type: ignore[no-untyped-def]
        counts["explained"] += 1
        return explain(*a)  # type: ignore[arg-type]

    Scorer.explain = explained  # type: ignore[method-assign]
    tick, peak = eng.Engine._tick, [0]

    def ticked(self: eng.Engine, sh: Shard, now: int) -> None:
        tick(self, sh, now)
        peak[0] = max(peak[0], len(sh.accounts))  # warm accounts after the tick's freezing sweep

    eng.Engine._tick = ticked  # type: ignore[method-assign]
    import river.anomaly  # noqa: F401  (its import's own collections are not the pass's)

    gc_s = [[0, 0.0] for _ in range(3)]  # per generation: collections, seconds
    gc_start = [0.0]  # when the current collection started
    gc.callbacks.append(lambda phase, info: _gc_clock(gc_s, gc_start, phase, info["generation"]))
    t_pass = time.perf_counter()
    rss0 = rss_bytes(os.getpid())
    runner = OfflineRunner(DetectionConfig.from_settings(Settings()))
    rate = measure_offline(Settings(), data, runner)  # the bench's own offline phase, counters included
    grown = rss_bytes(os.getpid()) - rss0
    t_pass = time.perf_counter() - t_pass
    gc.callbacks.clear()
    n = len(values)
    print(f"events {n:,}, accounts {data.accounts:,}, core {rate:,.0f} events/s (with counters)")
    print(f"minute rolls {counts['roll']:,} ({counts['roll'] / n:.0%} of events)")
    print(f"scorings {counts['_score']:,} ({counts['_score'] / n:.0%} of events), "
          f"screened {counts['_score'] - counts['explained']:,}, full {counts['explained']:,}")  # fmt: skip
    per_summary = cluster_s[0] / max(1, counts["summaries"]) * 1e6
    per_event = cluster_s[0] / n * 1e6
    print(f"cluster detector: {counts['summaries']:,} summaries ({counts['summaries'] / n:.0%} of events), "
          f"{per_summary:.1f} µs each = {per_event:.1f} µs per event")  # fmt: skip
    print(f"decode + cluster detector alone: {best / len(sample) * 1e6 + per_event:.1f} µs per event "
          f"(the 100,000 events/s offline bar allows 10 µs for everything)")  # fmt: skip
    n_gc, gc_total = sum(g[0] for g in gc_s), sum(g[1] for g in gc_s)
    print(f"cyclic GC during the pass: {n_gc:.0f} collections, {gc_total:.2f} s ({gc_total / t_pass:.1%} of the "
          f"pass; thresholds {gc.get_threshold()}); by generation (collections, s): "
          f"{', '.join(f'{i}: {g[0]:.0f}, {g[1]:.2f}' for i, g in enumerate(gc_s))}")  # fmt: skip
    print(f"resident growth of the offline pass: {grown / data.accounts:,.0f} B per active account "
          f"(engine + cluster detector objects, no Kafka buffers)")  # fmt: skip
    warm = sum(len(sh.accounts) for sh in runner.engine.shards.values())
    print(f"warm accounts: peak {peak[0]:,} after a tick, {warm:,} at the end with {runner.engine.accounts_frozen():,} "
          f"frozen (resident memory keeps the peak's pages)")  # fmt: skip
    clusters = runner.clusters
    t = time.perf_counter()
    blob = clusters.snapshot()
    dumped = time.perf_counter() - t
    t = time.perf_counter()
    packed = zlib.compress(blob, 1)
    print(f"cluster detector snapshot: {len(blob) / 1e6:.1f} MB in {dumped:.2f} s; zlib level 1: "
          f"{len(packed) / 1e6:.1f} MB in {time.perf_counter() - t:.2f} s (cluster-state parts)")  # fmt: skip
    per_event = {"roll": counts["roll"] / n, "score": counts["_score"] / n, "full": counts["explained"] / n}
    _operation_costs(runner, per_event, best / len(sample) * 1e6, per_summary, 1e6 / rate)


def _operation_costs(
    runner: OfflineRunner, per_event: dict[str, float], decode_us: float, summary_us: float, total_us: float
) -> None:
    """µs per call of each costly operation, timed on the accounts the pass left, times calls per event."""
    sh = runner.engine.shards[0]  # the pass's own shard
    states = list(sh.accounts.values())[:20_000]
    now, scorer = sh.clock, sh.scorer

    def each(fn: Callable[..., object], args: list[tuple[Any, ...]]) -> float:
        """Best of 3 µs per call of ``fn(*a)`` over ``args``."""
        return min(_timed(lambda: _call_each(fn, args)) for _ in range(3)) / len(args) * 1e6

    def fold_once() -> float:
        """µs per fold; fold changes the account, so it is timed on fresh copies, each rolled a minute on."""
        copies = [AccountState.load(orjson.loads(orjson.dumps(st.dump()))) for st in states]
        rolls = [(c, c.bucket.minute_ms + 60_000) for c in copies]
        return _timed(lambda: _call_each(fold, rolls)) / len(rolls) * 1e6

    fold_us = min(fold_once() for _ in range(3))
    feats = [feature_vector(st, now) for st in states]
    assessed = [scorer.assess(st, f) for st, f in zip(states, feats, strict=True)]
    reasons = [scorer.explain(st, f, a) for st, f, a in zip(states, feats, assessed, strict=True)]
    ops = [
        ("decode_event", decode_us, 1.0),
        ("fold (minute roll)", fold_us, per_event["roll"]),
        ("feature_vector (scoring)", each(feature_vector, [(st, now) for st in states]), per_event["score"]),
        ("Scorer.assess (scoring)", each(scorer.assess, list(zip(states, feats, strict=True))), per_event["score"]),
        ("Scorer.explain + learn (reported)",
         each(scorer.explain, list(zip(states, feats, assessed, strict=True))), per_event["full"]),
        ("scoring_records (reported)",
         each(lambda st, f, r: scoring_records(st, now, 0.5, "low", 0.2, f, scorer.pop, r),
              list(zip(states, feats, reasons, strict=True))), per_event["full"]),
        ("ClusterDetector.add_summary (reported)", summary_us, per_event["full"]),
    ]  # fmt: skip
    print(f"{'operation':40s} {'µs each':>8s} {'per event':>9s} {'µs/event':>8s}")
    for name, us, rate in ops:
        print(f"{name:40s} {us:8.2f} {rate:9.2f} {us * rate:8.2f}")
    listed = sum(us * rate for _, us, rate in ops)
    print(f"{'listed operations':40s} {'':8s} {'':9s} {listed:8.2f}")
    print(f"{'the pass, measured (µs per event)':40s} {'':8s} {'':9s} {total_us:8.2f}")
    print(f"{'the rest: add + count, ticks, draining':40s} {'':8s} {'':9s} {total_us - listed:8.2f}")


def _gc_clock(acc: list[list[float]], start: list[float], phase: str, generation: int) -> None:
    """gc.callbacks hook: count the collections of each generation and add up their time in ``acc``."""
    if phase == "start":
        start[0] = time.perf_counter()
    else:
        acc[generation][0] += 1
        acc[generation][1] += time.perf_counter() - start[0]


def _decode_all(values: list[bytes]) -> None:
    for v in values:
        decode_event(v)


def _call_each(fn: Callable[..., object], args: list[tuple[Any, ...]]) -> None:
    for a in args:
        fn(*a)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
