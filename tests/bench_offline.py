"""Offline-core throughput as ``bench``/``evaluate`` drive it (not collected by pytest).

    python tests/bench_offline.py EVENTS.jsonl [--lines N] [--repeat 3]
    python tests/bench_offline.py --make-bench-data /tmp/dw/bench.jsonl   # the ``cli bench`` events

Times ``OfflineRunner.feed(decode_event(line))`` + ``finish()`` over pre-read lines after
``tune_gc()``; prints events/s per run and the median, and decode alone in µs/event.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detection import DetectionConfig  # noqa: E402
from pipeline.offline import OfflineRunner  # noqa: E402
from pipeline.tuning import tune_gc  # noqa: E402
from pipeline.validation import decode_event  # noqa: E402


def make_bench_data(out: str) -> None:
    from pipeline.benchdata import make_data

    data = make_data(1_000_000, 100_000, 2024, progress=False)  # ``cli bench`` defaults
    with open(out, "wb") as fh:
        fh.writelines(value + b"\n" for _, value in data.items)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("events", nargs="?")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--make-bench-data")
    a = p.parse_args()
    if a.make_bench_data:
        make_bench_data(a.make_bench_data)
        return
    with open(a.events, "rb") as fh:
        raw = [line.rstrip(b"\n") for line in islice(fh, a.lines)]
    tune_gc()
    rates = []
    for _ in range(a.repeat):
        runner = OfflineRunner(DetectionConfig())
        feed = runner.feed
        t = time.perf_counter()
        for i, line in enumerate(raw):
            feed(decode_event(line), i)
        runner.finish()
        rates.append(len(raw) / (time.perf_counter() - t))
        t = time.perf_counter()
        for line in raw:
            decode_event(line)
        dec = (time.perf_counter() - t) / len(raw) * 1e6
        print(f"{rates[-1]:,.0f} events/s (decode alone {dec:.2f} µs/event)", flush=True)
    print(f"median {statistics.median(rates):,.0f} events/s over {len(raw):,} events")


if __name__ == "__main__":
    main()
