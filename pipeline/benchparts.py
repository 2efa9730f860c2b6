"""The measurements ``bench`` makes; each returns plain numbers (events/s, rows/s, seconds, bytes)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.benchdata import BenchData
from pipeline.settings import Settings
from pipeline.stack import LagProbe, LocalStack

if TYPE_CHECKING:
    from pipeline.offline import OfflineRunner


async def measure_ceiling(s: Settings, n: int) -> float:
    """events/s of a bare aiokafka getmany + orjson + per-account count loop over the loaded topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline.worker import kafka_consumer_kwargs

    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=8 << 20,
                                fetch_max_bytes=64 << 20, **kafka_consumer_kwargs(s))  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(s.topic_requests, p) for p in range(s.kafka_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        counts: dict[str, int] = {}
        seen = 0
        loads = orjson.loads
        t0 = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=20000)
            for records in batch.values():
                for rec in records:
                    acct = loads(rec.value)["account_id"]
                    counts[acct] = counts.get(acct, 0) + 1
                seen += len(records)
        return seen / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


def measure_offline(s: Settings, data: BenchData, runner: OfflineRunner | None = None) -> float:
    """events/s of the detection core alone (decode + engine), as ``evaluate`` drives it
    (into ``runner`` when given, so a caller can inspect the state it leaves)."""
    import river.anomaly  # noqa: F401  (imported by the first shard; not part of the measurement)

    from pipeline.detection import DetectionConfig
    from pipeline.offline import OfflineRunner
    from pipeline.tuning import tune_gc
    from pipeline.validation import decode_event

    tune_gc()
    if runner is None:
        runner = OfflineRunner(DetectionConfig.from_settings(s))
    feed = runner.feed
    t0 = time.perf_counter()
    for offset, (_, value) in enumerate(data.items):
        feed(decode_event(value), offset)
    runner.finish()
    return len(data.items) / (time.perf_counter() - t0)


def _metric(port: int, name: str) -> float:
    """A metric of the worker; 0 while its web server does not answer (busy or starting)."""
    return _answered_metric(port, name) or 0.0


def _answered_metric(port: int, name: str) -> float | None:
    """A metric of the worker; None while its web server does not answer."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def worker_ready(port: int) -> bool:
    """The worker answers /readyz with 200 (its partitions are assigned and restored)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_worker(stack: LocalStack, data: BenchData, timeout_s: float = 900.0) -> dict[str, float]:
    """The worker process end to end, first event consumed -> every event's aggregate visible."""
    s = stack.settings
    store = stack.open_store()
    stack.start_sink()
    proc = stack.start_worker("bench")
    port = proc.web_port  # type: ignore[attr-defined]
    rss_base, t0, cpu0, base_at = 0, 0.0, 0.0, 0.0
    deadline = time.monotonic() + timeout_s
    while not t0:
        try:
            # the baseline is the last reading before the first event was consumed (started, River
            # loaded, partitions assigned): what grows after it is the state of the accounts
            rss_before, read_at = rss_bytes(proc.pid), time.monotonic()
            consumed = _answered_metric(port, "distillwatch_events_in_total")
            if consumed:
                t0, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
            elif consumed is not None:
                rss_base, base_at = rss_before, read_at
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start consuming; see {stack.workdir}/bench.log")
        time.sleep(0.02)
    # The exact count (argMax per key over the whole table) grows with the table: polled every 0.1 s
    # it competed for CPU with the worker it measures. It runs only once the worker has consumed
    # every event and the raw sum (one column; never below the exact one) reached the total.
    raw_sql = f"SELECT sum(events) FROM {s.clickhouse_database}.account_minute"
    sql = f"SELECT sum(events) FROM {s.clickhouse_database}.account_minute_v"
    last_log = time.monotonic()
    counted = consumed = next_metric = 0.0
    while True:
        raw = store.query(raw_sql)[1][0][0] or 0
        if consumed < len(data.items) and time.monotonic() >= next_metric:  # every 0.5 s: /metrics costs the worker
            consumed, next_metric = _metric(port, "distillwatch_events_in_total"), time.monotonic() + 0.5
        if raw >= data.distinct_events and consumed >= len(data.items):
            counted = store.query(sql)[1][0][0] or 0
        if counted >= data.distinct_events:
            t1, cpu1 = time.monotonic(), cpu_seconds(proc.pid)
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"only {counted}/{data.distinct_events} events counted; see {stack.workdir}")
        if time.monotonic() - last_log > 10:
            print(f"  worker consumed {consumed:,.0f}, ClickHouse holds {raw:,}/{data.distinct_events:,}")
            last_log = time.monotonic()
        time.sleep(0.1)
    tracked = _metric(port, "distillwatch_accounts_tracked") or data.accounts
    frozen = _metric(port, "distillwatch_accounts_frozen")
    rss = rss_bytes(proc.pid)
    alerts = store.query(f"SELECT count() FROM {s.clickhouse_database}.alerts")[1][0][0]
    return {
        "worker_events_per_s": len(data.items) / (t1 - t0),
        "worker_seconds": t1 - t0,
        # CPU the worker process used per event, and as a share of one core over the same span (below
        # 1.0: it waited, or the sink, ClickHouse and the broker took the core it could have used)
        "worker_cpu_us_per_event": (cpu1 - cpu0) / len(data.items) * 1e6,
        "worker_cpu_share": (cpu1 - cpu0) / (t1 - t0),
        "events_counted_in_clickhouse": float(counted),
        "alert_messages_in_clickhouse": float(alerts),
        "worker_rss_mb": rss / 2**20,
        # the baseline and how long before the first event it was read: the eighteenth session's
        # three runs started from 175, 162 and 132 MiB, and these show whether an early reading is why
        "worker_rss_base_mb": rss_base / 2**20,
        "worker_rss_base_age_s": t0 - base_at,
        "state_bytes_per_account": (rss - rss_base) / tracked,
        "accounts_frozen_share": frozen / tracked,
    }


def aggregate_messages(rows: int, batch: int = 500) -> list[bytes]:
    """``rows`` realistic per-account-minute rows, ``batch`` per Kafka message (as the worker sends them)."""
    from pipeline.records import AggregateRow, encode_aggregates

    base = int(time.time()) // 60 * 60_000
    out = []
    for start in range(0, rows, batch):
        out.append(encode_aggregates([
            AggregateRow(
                account_id=f"acct-{i % 20000:06d}", minute_ms=base + (i // 20000) * 60_000, version=i % 97 + 1,
                events=i % 97 + 1, input_tokens=900 * (i % 7), output_tokens=400 * (i % 5), errors=i % 3,
                latency_ms_sum=123.5 * (i % 11), category_counts=[i % 4, 1, 0, 2, 0, 0, 0, 1, 0, 3],
                models=["m-large-1", "m-large-2"][: 1 + i % 2],
            )
            for i in range(start, min(rows, start + batch))
        ]))  # fmt: skip
    return out


def measure_sink(stack: LocalStack, rows: int, timeout_s: float = 600.0) -> dict[str, float]:
    """rows/s of the real sink (Kafka consumer, decode, ClickHouse insert, commit) over a loaded backlog."""
    from pipeline.replay import produce_values
    from pipeline.sink import run_sink
    from pipeline.topics import ensure_topics

    stack.stop_sink()
    base = stack.settings
    s = base.model_copy(update={
        "sink_group": base.sink_group + "-bench",
        **{f"topic_{t}": f"sinkbench.{t}" for t in ("aggregates", "scores", "alerts", "feedback")},
    })  # fmt: skip
    ensure_topics(s)
    values = aggregate_messages(rows)
    asyncio.run(produce_values(s, s.topic_aggregates, ((None, v) for v in values), progress=False))
    stop = threading.Event()
    stats: list[Any] = []
    thread = threading.Thread(target=lambda: stats.append(run_sink(s, stop, store=stack.open_store())))
    probe = LagProbe(s, s.sink_group, s.topic_aggregates)  # one client, polled: little CPU next to the sink
    try:
        backlog = probe.lag()
        started = time.monotonic()
        thread.start()
        # From the first commit (the group has joined and one batch is in) to the last: the rows
        # committed in between are the backlog left at the first commit, in messages of ROWS each.
        t0, left = 0.0, 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lag = probe.lag()
            if not t0 and lag < backlog:
                t0, left = time.monotonic(), lag
            if lag == 0:
                break
            time.sleep(0.1)
        t1 = time.monotonic()
    finally:
        probe.close()
    stop.set()
    thread.join(60)
    written = sum(stats[0].rows.values()) if stats else 0
    if not left:  # a tiny backlog went in one commit: time it from the start (group join included)
        return {"sink_rows": float(written), "sink_rows_per_s": written / max(1e-9, t1 - started)}
    timed_rows = written * left / max(1, backlog)
    return {"sink_rows": float(written), "sink_rows_per_s": timed_rows / max(1e-9, t1 - t0)}
