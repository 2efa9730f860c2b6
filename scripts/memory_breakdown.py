"""Where an active account's bytes go after an offline pass over the benchmark data (not collected by pytest).

    python scripts/memory_breakdown.py [--events 300000] [--accounts 30000] [--seed 2024]

Builds the data ``distillwatch bench`` builds (``benchdata.make_data``), runs the detection core over
it as ``evaluate`` does, then prints the deep size (``sys.getsizeof``, each object counted once)
per warm account of every ``AccountState`` slot, the size of the frozen ones (``cold``) and of the
cluster detector's tables; what freezing a warm account holds and costs (freeze, thaw); and the
gaps between an account's consecutive events (how often a frozen account is loaded again).
Deep size leaves out the allocator's overhead and fragmentation that a worker's RSS includes: the
resident growth of this process over the pass (malloc tuned as the worker's, River imported first)
shows them, without the worker's Kafka buffers and Faust table.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.account import AccountState  # noqa: E402
from pipeline.benchdata import data_from_cli  # noqa: E402
from pipeline.benchparts import measure_offline, rss_bytes  # noqa: E402
from pipeline.cold import ColdAccounts  # noqa: E402
from pipeline.detection import DetectionConfig  # noqa: E402
from pipeline.offline import OfflineRunner  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.tuning import preload, tune_malloc  # noqa: E402
from pipeline.validation import decode_event  # noqa: E402

_UNSET = object()


def held(obj: object, name: str) -> object:
    """The object ``obj`` holds in slot ``name``, or ``_UNSET``: an unset slot, or a C field of a
    compiled extension type (account.pxd, sketches.pxd, topk.pxd), which is inside ``obj`` and makes
    a new object per read."""
    value = getattr(obj, name, _UNSET)
    return value if value is getattr(obj, name, _UNSET) else _UNSET


def deep_size(obj: object, seen: set[int]) -> int:
    """Bytes of ``obj`` and everything it reaches (slots, containers), each object once (C fields of
    a compiled extension type are inside the object: ``held``)."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, str | bytes | bytearray | int | float):
        return size
    if isinstance(obj, dict):
        return size + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return size + sum(deep_size(v, seen) for v in obj)
    for name in getattr(type(obj), "__slots__", ()):
        if (value := held(obj, name)) is not _UNSET:
            size += deep_size(value, seen)
    return size


def main() -> None:
    data = data_from_cli(__doc__, events=300_000, accounts=30_000)
    s = Settings()
    tune_malloc(s.worker_malloc_mmap_threshold)
    runner = OfflineRunner(DetectionConfig.from_settings(s))
    preload()  # River, imported by the first shard otherwise: not account state (as the worker does)
    rss0 = rss_bytes(os.getpid())
    measure_offline(s, data, runner)
    rss1 = rss_bytes(os.getpid())
    accounts = [st for sh in runner.engine.shards.values() for st in sh.accounts.values()]
    n = len(accounts)
    seen: set[int] = set()
    per_slot: Counter[str] = Counter()
    for st in accounts:
        per_slot["(the object)"] += sys.getsizeof(st)
        seen.add(id(st))
        for name in AccountState.__slots__:
            if (value := held(st, name)) is not _UNSET:
                per_slot[name] += deep_size(value, seen)
    print(f"{n:,} warm accounts; engine state {sum(per_slot.values()) / n:,.0f} B/account (deep size)")
    for name, b in per_slot.most_common(16):
        print(f"  {b / n:7,.0f} B  {name}")
    blobs = [b for sh in runner.engine.shards.values() for b in sh.cold.blobs.values()]
    blobs_size = [sys.getsizeof(b) for b in blobs]
    if blobs:
        print(f"{len(blobs):,} frozen accounts (idle {Settings().freeze_idle_s} s): median "
              f"{statistics.median(blobs_size):,.0f} B each (compressed record)")  # fmt: skip
    clusters = runner.clusters
    names = getattr(type(clusters), "__slots__", None) or list(vars(clusters))
    tables = {k: deep_size(getattr(clusters, k), seen) for k in names if k not in ("config", "policy")}
    shared = "strings shared with the engine not counted again"
    n_all = n + len(blobs)
    print(f"cluster detector {sum(tables.values()) / n_all:,.0f} B/account ({shared})")
    for k, b in sorted(tables.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {b / n_all:7,.0f} B  {k}")
    deep = sum(per_slot.values()) + sum(blobs_size) + sum(tables.values())
    print(f"resident memory growth of this process over the pass: {(rss1 - rss0) / n_all:,.0f} B/account "
          f"(deep sizes above: {deep / n_all:,.0f} B)")

    sample = accounts[:5000]
    cold = ColdAccounts()
    t0 = time.perf_counter()
    for st in sample:
        cold.freeze(st)
    t1 = time.perf_counter()
    for st in sample:
        cold.thaw(st.account_id)
    t2 = time.perf_counter()
    for st in sample:
        cold.freeze(st)
    json = statistics.median(len(cold.record(a) or b"") for a in cold.blobs)
    print(f"frozen account (cold tier): JSON {json:,.0f} B, "
          f"held {statistics.median(sys.getsizeof(b) for b in cold.blobs.values()):,.0f} B compressed (medians); "
          f"freeze {(t1 - t0) / len(sample) * 1e6:.1f} µs, thaw {(t2 - t1) / len(sample) * 1e6:.1f} µs")  # fmt: skip

    last: dict[str, int] = {}
    gaps: list[int] = []
    for _, value in data.items:
        ev = decode_event(value)
        prev = last.get(ev.account_id)
        if prev is not None:
            gaps.append(ev.ts_ms - prev)
        last[ev.account_id] = ev.ts_ms
    gaps.sort()
    q = [gaps[int(len(gaps) * f)] / 1000 for f in (0.25, 0.5, 0.75, 0.9)]
    print("gap between an account's events (event time): p25 {:.0f} s, median {:.0f} s, p75 {:.0f} s, "
          "p90 {:.0f} s".format(*q))  # fmt: skip


if __name__ == "__main__":
    main()
