"""Where the detection core's time goes on the benchmark data (not collected by pytest).

    python scripts/core_profile.py [--events 1000000] [--accounts 100000] [--seed 2024]

Builds the same data as ``distillwatch bench`` (``benchdata.make_data``), then prints:
decode µs/event (best of 5 over 100,000 messages), and one offline pass counting minute rolls,
scorings (all, and screened: no rows emitted), the cluster detector's time per summary and per
event, and the core's events/s, the pass's resident growth per account, and the size and cost of
the cluster detector's snapshot. The counters wrap engine
methods, so the events/s printed here is a little below ``bench``'s offline figure.
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import engine as eng  # noqa: E402
from pipeline.benchdata import data_from_cli  # noqa: E402
from pipeline.benchparts import measure_offline, rss_bytes  # noqa: E402
from pipeline.clusters import ClusterDetector  # noqa: E402
from pipeline.contract import decode_event  # noqa: E402
from pipeline.detection import DetectionConfig, Scorer  # noqa: E402
from pipeline.offline import OfflineRunner  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.shard import Shard  # noqa: E402


def main() -> None:
    data = data_from_cli(__doc__, events=1_000_000, accounts=100_000)
    values = [v for _, v in data.items]
    sample = values[:100_000]
    best = min(_timed(lambda: [decode_event(v) for v in sample]) for _ in range(5))
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
    rss0 = rss_bytes(os.getpid())
    runner = OfflineRunner(DetectionConfig.from_settings(Settings()))
    rate = measure_offline(Settings(), data, runner)  # the bench's own offline phase, counters included
    grown = rss_bytes(os.getpid()) - rss0
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
    print(f"resident growth of the offline pass: {grown / data.accounts:,.0f} B per active account "
          f"(engine + cluster detector objects, no Kafka buffers)")  # fmt: skip
    clusters = runner.clusters
    t = time.perf_counter()
    blob = clusters.snapshot()
    dumped = time.perf_counter() - t
    t = time.perf_counter()
    packed = zlib.compress(blob, 1)
    print(f"cluster detector snapshot: {len(blob) / 1e6:.1f} MB in {dumped:.2f} s; zlib level 1: "
          f"{len(packed) / 1e6:.1f} MB in {time.perf_counter() - t:.2f} s (cluster-state parts)")  # fmt: skip


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
