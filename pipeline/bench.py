"""``bench``: throughput and latency of the real path, with the hardware ceiling measured in the same run.

One run: generate N contract events over A accounts (the simulator), load them
into ``api.requests`` on a fresh Tansu broker, then measure

1. ceiling  - a bare aiokafka ``getmany`` + ``orjson.loads`` + per-account count loop;
2. offline  - the detection core alone (``decode_event`` + ``Engine``), as ``evaluate`` runs it;
3. worker   - the real worker process end to end: first event consumed -> last
              aggregate row visible in ClickHouse (the sink running) and alerts produced,
              with the CPU the worker used over that span (per event, and as a share of a core);
4. sink     - a fresh sink group re-reading every row batch into ClickHouse;
   (before the sink and the latency phases, ClickHouse's background merges of the previous
   phase's inserts are let finish: ``quiesce_s`` is the wait)
5. latency  - event-to-alert p50/p99 at a fixed offered load (events stamped with wall time),
              on a fresh live worker of its own (the earlier one replayed simulated history);
6. memory   - worker resident memory growth per active account.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from pipeline.benchdata import BenchData, make_data
from pipeline.benchlatency import measure_latency
from pipeline.benchparts import (
    measure_ceiling,
    measure_offline,
    measure_sink,
    measure_worker,
)
from pipeline.compiled import summary
from pipeline.settings import Settings
from pipeline.store import Store

TARGETS = {
    "worker_events_per_s": (">=", 50_000),
    "worker_ratio_to_ceiling": (">=", 0.25),
    "offline_events_per_s": (">=", 100_000),
    "sink_rows_per_s": (">=", 200_000),
    "latency_p99_s": ("<=", 2.0),
    "state_bytes_per_account": ("<=", 4096),
}


def run_once(s: Settings, args: argparse.Namespace, data: BenchData, workdir: Path) -> dict[str, Any]:
    """One full measurement on a fresh broker and store."""

    if workdir.exists():
        shutil.rmtree(workdir)
    s = s.model_copy(update={"kafka_partitions": args.partitions, "clickhouse_path": workdir / "chdb",
                             "clickhouse_database": "distillwatch_bench"})  # fmt: skip
    server = None
    if args.clickhouse == "server":
        from pipeline.chserver import ClickHouseServer

        server = ClickHouseServer(workdir / "clickhouse")
        server.start()
        s = s.model_copy(update={"clickhouse_mode": "server", "clickhouse_host": server.host,
                                 "clickhouse_port": server.tcp_port})  # fmt: skip
    try:
        return _measure(s, args, data, workdir)
    finally:
        if server is not None:
            server.stop()


def _measure(s: Settings, args: argparse.Namespace, data: BenchData, workdir: Path) -> dict[str, Any]:
    from pipeline.replay import produce_values
    from pipeline.stack import LocalStack

    with LocalStack.create(s, workdir) as stack:
        s = stack.settings
        t = time.perf_counter()
        asyncio.run(produce_values(s, s.topic_requests, data.items, len(data.items), progress=not args.quiet,
                                   desc="loading"))  # fmt: skip
        result: dict[str, Any] = {"load_events_per_s": len(data.items) / (time.perf_counter() - t)}
        result["ceiling_events_per_s"] = asyncio.run(measure_ceiling(s, len(data.items)))
        result["offline_events_per_s"] = measure_offline(s, data)
        result.update(measure_worker(stack, data))
        result["worker_ratio_to_ceiling"] = result["worker_events_per_s"] / result["ceiling_events_per_s"]
        result["quiesce_s"] = quiesce(stack.open_store())
        result.update(measure_sink(stack, args.sink_rows))
        result["quiesce_s"] += quiesce(stack.open_store())
        result.update(measure_latency(stack, data, args.latency_rate, args.latency_seconds))
    return result


def quiesce(store: Store, timeout_s: float = 120.0) -> float:
    """Wait until ClickHouse has no background merge running (a phase's inserts are merged for tens
    of seconds after it ends: that CPU belongs to it, not to the next phase). Returns seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s and store.query("SELECT count() FROM system.merges")[1][0][0]:
        time.sleep(0.5)
    return time.monotonic() - t0


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every figure over the runs."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def format_report(median: dict[str, Any], runs: int, events: int, accounts: int) -> str:
    """The table printed at the end (and pasted into the README)."""
    lines = [
        f"bench: {events:,} events, {accounts:,} accounts, median of {runs} run(s)",
        f"{'figure':32} {'value':>14}  target",
        f"{'-' * 32} {'-' * 14}  {'-' * 14}",
    ]
    for key, value in median.items():
        target = TARGETS.get(key)
        mark = ""
        if target:
            op, bar = target
            ok = value >= bar if op == ">=" else value <= bar
            mark = f"{op} {bar:g} {'ok' if ok else 'MISSED'}"
        shown = f"{value:,.3f}" if isinstance(value, float) and value < 100 else f"{value:,.0f}"
        lines.append(f"{key:32} {shown:>14}  {mark}")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    data = make_data(args.events, args.accounts, args.seed, progress=not args.quiet)
    runs = []
    for i in range(args.repeat):
        result = run_once(settings, args, data, Path(args.workdir) / f"run{i + 1}")
        runs.append(result)
        if not args.quiet:
            print(format_report(result, 1, len(data.items), data.accounts))
    median = summarize(runs)
    print(format_report(median, len(runs), len(data.items), data.accounts))
    core = summary()  # the worker and the offline phase run this installation's core
    print(f"detection core: {core}")
    if args.json:
        doc = {"events": len(data.items), "accounts": data.accounts, "core": core, "runs": runs, "median": median}
        Path(args.json).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        print(f"wrote {args.json}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="measure throughput, latency and memory against the real broker + ClickHouse")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--repeat", type=int, default=3, help="runs; the table shows medians")
    p.add_argument("--latency-rate", type=int, default=10_000, help="offered events/s for the latency phase")
    p.add_argument("--latency-seconds", type=float, default=75.0,
                   help="paced phase length (event time = wall time; accounts are scored every DW_SCORE_INTERVAL_S)")
    p.add_argument("--sink-rows", type=int, default=2_000_000, help="rows for the sink measurement")
    p.add_argument("--clickhouse", choices=("embedded", "server"), default="embedded",
                   help="embedded chdb, or a private Debian clickhouse-server started for the run")
    p.add_argument("--workdir", default=".distillwatch/bench")
    p.add_argument("--json", default="bench.json", help="where to write the figures")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-run tables")
    p.set_defaults(func=run)
