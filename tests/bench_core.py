"""Micro-benchmark of the detection core (not collected by pytest).

    python tests/bench_core.py EVENTS.jsonl [--lines N] [--accounts 100000]

Prints decode µs/event, Engine.add µs/event (scoring included), the whole
offline core (decode + add + outputs + clusters) in events/s, and the state
bytes per account measured with tracemalloc over ``--accounts`` accounts.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.contract import Event  # noqa: E402
from pipeline.detection import DetectionConfig  # noqa: E402
from pipeline.engine import Engine  # noqa: E402
from pipeline.offline import OfflineRunner  # noqa: E402
from pipeline.validation import decode_event  # noqa: E402


def bench_throughput(path: str, lines: int) -> None:
    with open(path, "rb") as fh:
        raw = [line.rstrip(b"\n") for line in islice(fh, lines)]
    t = time.perf_counter()
    events = [decode_event(r) for r in raw]
    dec = time.perf_counter() - t
    eng = Engine(DetectionConfig())
    t = time.perf_counter()
    for i, ev in enumerate(events):
        eng.add(ev, 0, i)
    add = time.perf_counter() - t
    runner = OfflineRunner(DetectionConfig())
    t = time.perf_counter()
    for i, r in enumerate(raw):
        runner.feed(decode_event(r), i)
    runner.finish()
    full = time.perf_counter() - t
    n = len(raw)
    print(f"events {n}: decode {dec / n * 1e6:.2f} µs/event, add {add / n * 1e6:.2f} µs/event, "
          f"core (decode+add+outputs+clusters) {n / full:,.0f} events/s")  # fmt: skip


def bench_memory(accounts: int) -> None:
    t0 = 1_717_200_000_000
    eng = Engine(DetectionConfig())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    off = 0
    for k in range(5):  # five events per account, different minutes, IPs and templates
        for a in range(accounts):
            ev = Event(f"e{a}-{k}", t0 + k * 61_000 + a % 60_000, f"acct-{a:08d}", "m-large-1", 200, 300, 900,
                       simhash=(a * 0x9E3779B97F4A7C15 + k) & (2**64 - 1), template_hash=f"{a % 97:x}{k}",
                       category="chat", cot=k == 2, ip=f"10.{a % 256}.{k}.7", asn=7922,
                       user_agent="Mozilla/5.0 Chrome/124", payment_fingerprint=f"pf-{a % 1000}")  # fmt: skip
            eng.add(ev, 0, off)
            off += 1
        eng.take_outputs()
    eng.shards[0].recent.clear()  # closed minute buckets held only for allowed lateness
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(
        f"accounts {accounts}: {used / accounts:,.0f} bytes/account (tracemalloc, state after 5 events each)"
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("events")
    p.add_argument("--lines", type=int, default=300_000)
    p.add_argument("--accounts", type=int, default=100_000)
    a = p.parse_args()
    bench_throughput(a.events, a.lines)
    bench_memory(a.accounts)
