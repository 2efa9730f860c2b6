"""How many accounts stay warm for each freezing rule, and what the freezes cost (not collected by pytest).

    python scripts/freeze_scan.py [--events 1000000] [--accounts 100000] [--seed 2024]
        [--rules 1800:600,1800:120,1200:120,900:120]

Builds the data ``distillwatch bench`` builds (``benchdata.make_data``) and runs the detection core
over it as the worker does (events in order, no final flush: the end is mid-stream, as when the
bench reads the worker's memory), once per rule ``IDLE:SWEEP`` (seconds of event time):
``DW_FREEZE_IDLE_S`` and the interval between two freezing sweeps (``shard.FREEZE_SWEEP_MS``, set
on the engine module for the run). Prints, per rule, the warm accounts at the end and at their peak
(sampled every 20,000 events), the frozen ones, the freezes and the CPU seconds of the pass. A warm
account holds ~2.8 KB of objects and a frozen one ~0.45 KB (``scripts/memory_breakdown.py``), and
the allocator keeps the pages of the peak's warm set.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pipeline.engine  # noqa: E402
from pipeline.benchdata import make_data, script_parser  # noqa: E402
from pipeline.detection import DetectionConfig  # noqa: E402
from pipeline.offline import OfflineRunner  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.tuning import tune_gc  # noqa: E402
from pipeline.validation import decode_event  # noqa: E402


def main() -> None:
    parser = script_parser(__doc__, events=1_000_000, accounts=100_000)
    parser.add_argument("--rules", default="1800:600,1800:120,1200:120,900:120", help="IDLE:SWEEP s, comma-separated")
    args = parser.parse_args()
    rules = [tuple(int(x) for x in r.split(":")) for r in args.rules.split(",")]
    data = make_data(args.events, args.accounts, args.seed)
    events = [decode_event(value) for _, value in data.items]
    tune_gc()
    base = DetectionConfig.from_settings(Settings())
    for idle_s, sweep_s in rules:
        pipeline.engine.FREEZE_SWEEP_MS = sweep_s * 1000  # type: ignore[attr-defined]
        runner = OfflineRunner(dataclasses.replace(base, freeze_idle_ms=idle_s * 1000))
        shards = runner.engine.shards.values()
        peak = 0
        t0 = time.process_time()
        for i, ev in enumerate(events):
            runner.feed(ev, i)
            if i % 20_000 == 0:
                peak = max(peak, sum(len(sh.accounts) for sh in shards))
        cpu = time.process_time() - t0
        warm, frozen = sum(len(sh.accounts) for sh in shards), sum(len(sh.cold) for sh in shards)
        print(f"idle {idle_s:5} s, sweep {sweep_s:4} s: warm {warm:7,} at the end, {max(peak, warm):7,} at the peak; "
              f"frozen {frozen:7,}; freezes {runner.engine.frozen:7,}; CPU {cpu:5.1f} s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
