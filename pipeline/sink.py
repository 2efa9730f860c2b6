"""``distillwatch sink``: Kafka (aggregates, scores, alerts, feedback) -> ClickHouse, nothing lost.

Contract: rows are buffered per table (``pipeline.sink_rows.SinkBuffer``) and
inserted when a table reaches ``sink_batch_rows`` or the oldest row waited
``sink_flush_interval_s``. One insert runs in a background thread while the
next batch is polled and decoded; offsets are committed, in order, only after
every row they cover is in ClickHouse. A failed insert is retried with exponential backoff (forever:
a stalled sink is visible, a silent drop is not) while the consumer stays in
its group with all partitions paused. Above ``sink_max_buffer_rows`` (plus the
batch being inserted) the consumer pauses and Kafka holds the backlog. A crash replays uncommitted
messages; the tables are idempotent (ReplacingMergeTree), so nothing counts twice.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import DistillWatchError
from pipeline.logs import configure_logging
from pipeline.metrics import Metrics
from pipeline.settings import Settings
from pipeline.sink_rows import DECODERS, SinkBuffer
from pipeline.sinkweb import start_sink_web
from pipeline.store import Store, apply_schema, open_store

log = logging.getLogger("distillwatch.sink")

BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0


@dataclass
class SinkStats:
    """Counters of one ``run_sink`` call."""

    messages: int = 0
    rejected: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    flushes: int = 0
    retries: int = 0
    pauses: int = 0
    metrics: Metrics | None = None  # Prometheus counters, when the process exports them
    peak_buffer_rows: int = 0  # most rows held in memory at once (bounded: see sink_max_buffer_rows)


def topic_tables(settings: Settings) -> dict[str, str]:
    """Kafka topic -> ClickHouse table."""
    return {
        settings.topic_aggregates: "account_minute",
        settings.topic_scores: "account_scores",
        settings.topic_alerts: "alerts",
        settings.topic_feedback: "feedback",
    }


def _consumer(settings: Settings, topics: list[str]) -> Any:
    from kafka import KafkaConsumer

    kw = settings.kafka_client_kwargs()
    ctx = settings.ssl_context()
    if ctx is not None:
        kw["ssl_context"] = ctx
    return KafkaConsumer(
        *topics,
        group_id=settings.sink_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=10000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
        max_poll_records=5000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        **kw,
    )


def _commit(consumer: Any, offsets: dict[tuple[str, int], int]) -> None:
    from kafka import TopicPartition
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    if not offsets:
        return
    try:
        consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})
    except KafkaError as exc:  # e.g. a rebalance: the messages are replayed, the tables dedupe them
        log.warning("offset commit failed (%s); uncommitted messages will be replayed", type(exc).__name__)


def _flush(buffer: SinkBuffer, store: Store, consumer: Any, stats: SinkStats, stop: threading.Event,
           give_up_at: float | None) -> bool:  # fmt: skip
    """Insert the buffer (retrying with backoff, polling paused) then commit; False if abandoned."""
    delay = BACKOFF_FIRST_S
    paused: set[Any] = set()
    m = stats.metrics
    while True:
        pending, t0 = buffer.rows, time.perf_counter()
        try:
            offsets = buffer.flush(store)
        except DistillWatchError as exc:
            stats.retries += 1
            if m is not None:
                m.sink_failures.inc()
            if give_up_at is not None and time.monotonic() >= give_up_at:
                consumer.resume(*paused)
                log.error("giving up flushing %d rows at shutdown: %s (not committed: replayed on restart)",
                          buffer.rows, exc)  # fmt: skip
                return False
            log.warning("ClickHouse insert failed (%s); retrying in %.1fs", exc, delay)
            paused |= consumer.assignment() - consumer.paused()
            consumer.pause(*paused)
            end = time.monotonic() + delay
            while time.monotonic() < end:
                consumer.poll(timeout_ms=int(min(500, max(1, (end - time.monotonic()) * 1000))))
            delay = min(BACKOFF_MAX_S, delay * 2)
            if stop.is_set() and give_up_at is None:
                give_up_at = time.monotonic() + 30.0
            continue
        _inserted(stats, consumer, offsets, pending, t0, buffer.rows)
        if paused:
            consumer.resume(*paused)
        return True


def _inserted(stats: SinkStats, consumer: Any, offsets: dict[tuple[str, int], int], rows: int, t0: float,
              buffered: int) -> None:  # fmt: skip
    """An insert succeeded: count it, then commit the offsets it covers."""
    stats.flushes += 1
    m = stats.metrics
    if m is not None and rows:
        m.sink_rows.labels("all").inc(rows)
        m.sink_batch_seconds.labels("all").observe(time.perf_counter() - t0)
        m.sink_buffered_rows.set(buffered)
    _commit(consumer, offsets)


@dataclass
class _Insert:
    """A sealed buffer being inserted in the background."""

    buffer: SinkBuffer
    future: Future[dict[tuple[str, int], int]]
    rows: int  # taken at submission: the buffer empties as its tables go in
    t0: float


def _settle(job: _Insert | None, store: Store, consumer: Any, stats: SinkStats, stop: threading.Event,
            buffered: int) -> None:  # fmt: skip
    """Wait for the background insert; commit its offsets, or retry it in the foreground (backoff)."""
    if job is None:
        return
    try:
        offsets = job.future.result()
    except DistillWatchError as exc:
        stats.retries += 1
        if stats.metrics is not None:
            stats.metrics.sink_failures.inc()
        log.warning("ClickHouse insert failed (%s); retrying", exc)
        _flush(job.buffer, store, consumer, stats, stop, None)
        return
    _inserted(stats, consumer, offsets, job.rows, job.t0, buffered)


def run_sink(settings: Settings, stop_event: threading.Event | None = None, max_seconds: float | None = None,
             store: Store | None = None) -> SinkStats:  # fmt: skip
    """Run the sink until ``stop_event`` is set or ``max_seconds`` elapse; flush and commit on the way out.

    ``store`` lets a caller share an already open store (chdb allows one per
    process); otherwise one is opened from settings, the schema applied, and closed at the end.
    """
    stop = stop_event or threading.Event()
    own_store = store is None
    store = store or open_store(settings)
    if own_store:
        apply_schema(store)
    tables = topic_tables(settings)
    consumer = _consumer(settings, list(tables))
    metrics = Metrics()
    web = start_sink_web(settings, metrics, ready=lambda: bool(consumer.assignment()))
    buffer = SinkBuffer(settings.sink_batch_rows, settings.sink_flush_interval_s)
    stats = SinkStats(metrics=metrics)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    paused = False
    inserter = ThreadPoolExecutor(1, thread_name_prefix="sink-insert")
    inflight: _Insert | None = None
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if buffer.rows >= settings.sink_max_buffer_rows and not paused:
                consumer.pause(*consumer.assignment())
                paused, stats.pauses = True, stats.pauses + 1
            batches = consumer.poll(timeout_ms=100)
            for tp, records in batches.items():
                table = tables[tp.topic]
                decode = DECODERS[table]
                for rec in records:
                    stats.messages += 1
                    try:
                        columns = decode(rec.value)
                    except (ValueError, TypeError, KeyError, AttributeError) as exc:
                        stats.rejected += 1
                        log.error("rejected %s[%d]@%d: %s: %s", tp.topic, tp.partition, rec.offset,
                                  type(exc).__name__, exc)  # fmt: skip
                        buffer.skip(tp.topic, tp.partition, rec.offset)
                        continue
                    n = len(next(iter(columns.values())))
                    stats.rows[table] = stats.rows.get(table, 0) + n
                    buffer.add(table, columns, tp.topic, tp.partition, rec.offset)
            held = buffer.rows + (inflight.buffer.rows if inflight else 0)
            if held > stats.peak_buffer_rows:
                stats.peak_buffer_rows = held
            if inflight is not None and inflight.future.done():  # commit (or retry) as soon as it ends
                _settle(inflight, store, consumer, stats, stop, buffer.rows)
                inflight = None
            if buffer.due() or paused:
                # One insert in flight while the next batch is polled and decoded (the ClickHouse
                # clients release the GIL while they wait): settle the previous one, then hand over.
                _settle(inflight, store, consumer, stats, stop, buffer.rows)
                sealed = buffer.seal()
                inflight = _Insert(sealed, inserter.submit(sealed.flush, store), sealed.rows, time.perf_counter())
                if paused:
                    consumer.resume(*consumer.paused())
                    paused = False
        _settle(inflight, store, consumer, stats, stop, buffer.rows)
        inflight = None
        _flush(buffer, store, consumer, stats, stop, time.monotonic() + 30.0)
    finally:
        if inflight is not None:  # an error above: let the insert finish, commit nothing
            inflight.future.exception()
        inserter.shutdown()
        if web is not None:
            web.close()
        consumer.close(autocommit=False)
        if own_store:
            store.close()
    return stats


def register(sub: Any) -> None:
    """Add the ``sink`` subcommand."""
    p = sub.add_parser("sink", help="write aggregates, scores, alerts, feedback from Kafka to ClickHouse")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """CLI entry: run until SIGINT/SIGTERM (or --max-seconds), then flush and exit."""
    configure_logging("info")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stats = run_sink(settings, stop, args.max_seconds)
    log.info("sink stopped: %s", stats)
    return 0
