"""Measure the sink's ClickHouse path: Kafka message values -> columns -> insert, in rows/s.

    python scripts/bench_store.py --mode embedded --rows 1000000
    python scripts/bench_store.py --mode server --rows 1000000   # starts a private clickhouse-server
    python scripts/bench_store.py --merge-on-insert             # ClickHouse's default insert settings

Rows are AggregateRow batches of ``--batch`` rows per message (as the worker sends them),
inserted ``--flush`` rows at a time (the sink's ``sink_batch_rows``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pipeline.benchparts import aggregate_messages  # noqa: E402
from pipeline.settings import load_settings  # noqa: E402
from pipeline.sink_rows import DECODERS, SinkBuffer  # noqa: E402
from pipeline.store import apply_schema, open_store  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("embedded", "server"), default="embedded")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000, help="rows per Kafka message")
    ap.add_argument("--flush", type=int, default=50_000, help="rows per ClickHouse insert")
    ap.add_argument("--port", type=int, default=0, help="existing server's native port (else start one)")
    ap.add_argument("--merge-on-insert", action="store_true",
                    help="leave ClickHouse's default optimize_on_insert (the sink turns it off)")  # fmt: skip
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dw-bench-"))
    server = None
    port = args.port
    if args.mode == "server" and not port:
        from pipeline.chserver import ClickHouseServer

        server = ClickHouseServer(tmp / "clickhouse")
        server.start()
        port = server.tcp_port
    settings = load_settings(
        clickhouse_mode=args.mode, clickhouse_path=tmp / "chdb", clickhouse_port=port or 9000,
        clickhouse_database="dw_bench",
    )  # fmt: skip
    store = open_store(settings)
    try:
        apply_schema(store)
        if args.merge_on_insert:
            store.insert_settings = {}
        values = aggregate_messages(args.rows, args.batch)
        decode = DECODERS["account_minute"]
        buffer = SinkBuffer(args.flush, 3600.0)
        t_convert = t_insert = 0.0
        for offset, value in enumerate(values):
            t0 = time.perf_counter()
            buffer.add("account_minute", decode(value), "bench", 0, offset)
            t1 = time.perf_counter()
            t_convert += t1 - t0
            if buffer.due():
                buffer.flush(store)
                t_insert += time.perf_counter() - t1
        t1 = time.perf_counter()
        buffer.flush(store)
        t_insert += time.perf_counter() - t1
        stored = store.query("SELECT count() FROM dw_bench.account_minute")[1][0][0]
        total = t_convert + t_insert
        print(
            f"{args.mode}: {args.rows} rows, {stored} stored | convert {args.rows / t_convert:,.0f} rows/s | "
            f"insert {args.rows / t_insert:,.0f} rows/s | end-to-end {args.rows / total:,.0f} rows/s"
        )
    finally:
        store.close()
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
