#!/usr/bin/env python3
"""Full-size reliability run: replay simulated traffic through a private Tansu broker, worker
processes, the sink and a private clickhouse-server (18.16), with worker kills (SIGKILL), a
rebalance (a second worker added then removed), a ClickHouse outage and a broker SIGSTOP; then
check that nothing was lost, nothing counted twice, and no incident duplicated or lost.

    python scripts/reliability_run.py --events 200000 --kills 3

Prints a Markdown table (docs/reliability.md holds the measured one). Exit status 1 on any loss.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pipeline.reliability import Faults, run, table  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402


def default_plan(chunks: int, kills: int, broker_pause_s: float, ch_outage: bool) -> dict[int, list[str]]:
    """Spread the faults over the replay: kills of w1, add/remove w2, one ClickHouse outage, one broker pause."""
    plan: dict[int, list[str]] = {}

    def at(frac: float, action: str) -> None:
        plan.setdefault(min(chunks - 2, max(0, int(frac * chunks))), []).append(action)

    at(0.15, "add:w2")
    for k in range(kills):
        at(0.2 + 0.6 * k / max(1, kills - 1) if kills > 1 else 0.5, "kill:w1" if k % 2 == 0 else "kill:w2")
    if ch_outage:
        at(0.35, "ch_down")
        at(0.55, "ch_up")
    if broker_pause_s:
        at(0.65, f"broker_pause:{broker_pause_s:g}")
    at(0.85, "remove:w2")
    # a kill of w2 after its removal would fail: keep kills of w2 before the removal
    for c in sorted(plan):
        if c >= int(0.85 * chunks):
            plan[c] = [a if a != "kill:w2" else "kill:w1" for a in plan[c]]
    return plan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--broker-pause", type=float, default=8.0, help="seconds of SIGSTOP (0: none)")
    ap.add_argument("--no-clickhouse-outage", action="store_true")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()

    from servers import ClickHouseServer

    work = args.workdir or Path(tempfile.mkdtemp(prefix="dw-reliability-"))
    ch = ClickHouseServer(work / "clickhouse")
    ch.start()
    tag = uuid.uuid4().hex[:8]
    try:
        s = load_settings(
            kafka_partitions=args.partitions, app_id=f"dw-rel-{tag}", sink_group=f"sink-rel-{tag}",
            clickhouse_mode="server", clickhouse_host=ch.host, clickhouse_port=ch.tcp_port,
            clickhouse_database=f"dw_rel_{tag}", worker_commit_interval_s=1.0,
            sink_flush_interval_s=0.5, sink_batch_rows=20000, sink_max_buffer_rows=50000,
        )  # fmt: skip
        plan = default_plan(args.chunks, args.kills, args.broker_pause, not args.no_clickhouse_outage)
        t0 = time.monotonic()
        r = run(s, work / "stack", args.events, plan, args.chunks, Faults(ch.stop, ch.start), args.seed,
                args.timeout, log=lambda m: print(f"[{time.monotonic() - t0:7.1f}s] {m}", flush=True))  # fmt: skip
    finally:
        ch.stop()
    print()
    print(table([(f"{args.events} events, {args.partitions} partitions", r)]))
    print(r)
    print(f"workdir: {work}")
    return 0 if r.ok() else 1


if __name__ == "__main__":
    raise SystemExit(main())
