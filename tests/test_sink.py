"""The sink end to end: kafka-python producer -> real Tansu broker -> run_sink -> real ClickHouse."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.records import AggregateRow, FeedbackRow, ScoreRow, encode_rows
from pipeline.settings import Settings, load_settings
from pipeline.sink import SinkStats, run_sink
from pipeline.store import Store, apply_schema, open_store

pytestmark = pytest.mark.integration
NOW_MIN_MS = int(time.time()) // 60 * 60_000


def _settings(broker: str, mode: str, port: int, chdb_path: Path) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return load_settings(
        kafka_bootstrap=broker, clickhouse_mode=mode, clickhouse_port=port, clickhouse_path=chdb_path,
        clickhouse_database=f"dw_sink_{tag}", sink_group=f"sink-{tag}", sink_flush_interval_s=0.2,
        sink_batch_rows=2000, sink_max_buffer_rows=5000, topic_aggregates=f"agg-{tag}",
        topic_scores=f"scores-{tag}", topic_alerts=f"alerts-{tag}", topic_feedback=f"fb-{tag}",
    )  # fmt: skip


def _produce(s: Settings, first: int, n_batches: int, rows_per_batch: int = 500) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, linger_ms=5)
    for b in range(first, first + n_batches):
        rows = [
            AggregateRow(f"acct-{b}-{i}", NOW_MIN_MS, 2, events=2, models=["m"])
            for i in range(rows_per_batch)
        ]
        producer.send(s.topic_aggregates, encode_rows(rows))
        # A replay of the same rows must not count twice.
        producer.send(s.topic_aggregates, encode_rows(rows[:10]))
        producer.send(s.topic_scores, encode_rows([ScoreRow(f"acct-{b}-0", NOW_MIN_MS, 0.9, "high", "hst",
                                                            ["f"], [1.0], [0.0], [1.0])]))  # fmt: skip
        alert = {"alert_id": f"al-{b}", "version": 1, "state": "open", "subject_kind": "account",
                 "subject_id": f"acct-{b}-0", "accounts": [f"acct-{b}-0"], "score": 0.9, "severity": "high",
                 "detector": "hst", "reasons": [], "window_start": "2026-01-01T00:00:00Z",
                 "window_end": "2026-01-01T00:01:00Z", "first_seen": "2026-01-01T00:00:00Z", "events": 3,
                 "model_version": "v1", "emitted_at": "2026-01-01T00:01:00Z"}  # fmt: skip
        producer.send(s.topic_alerts, orjson.dumps(alert), key=str(alert["subject_id"]).encode())
        producer.send(s.topic_feedback, encode_rows([FeedbackRow("true_positive", f"acct-{b}-0", f"al-{b}")]))
    producer.send(s.topic_feedback, b"this is not a row batch")  # rejected, logged, never blocks
    producer.flush()
    producer.close()


def _counts(store: Store) -> tuple[int, ...]:
    db = store.database
    sql = (
        f"SELECT (SELECT sum(events) FROM {db}.account_minute_v), (SELECT count() FROM {db}.account_scores),"
        f" (SELECT count() FROM {db}.alerts), (SELECT count() FROM {db}.feedback)"
    )
    return tuple(int(v or 0) for v in store.query(sql)[1][0])


def _wait(cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _start(
    s: Settings, store: Store | None = None
) -> tuple[threading.Event, threading.Thread, list[SinkStats]]:
    stop, out = threading.Event(), []
    thread = threading.Thread(target=lambda: out.append(run_sink(s, stop, 90, store)), daemon=True)
    thread.start()
    return stop, thread, out


def test_sink_end_to_end_server(broker: str, clickhouse_server: Any, chdb_path: Path) -> None:
    s = _settings(broker, "server", clickhouse_server.tcp_port, chdb_path)
    _produce(s, 0, 6)
    stop, thread, out = _start(s)
    reader = open_store(s)
    try:
        _wait(lambda: reader.query(f"EXISTS TABLE {s.clickhouse_database}.feedback")[1] == [(1,)])
        _wait(lambda: _counts(reader) == (6 * 500 * 2, 6, 6, 6))
    finally:
        stop.set()
        thread.join(30)
        reader.close()
    assert out and out[0].rejected == 1 and out[0].rows["account_minute"] == 6 * 510


def test_sink_end_to_end_embedded_shared_store(broker: str, chdb_path: Path) -> None:
    s = _settings(broker, "embedded", 9000, chdb_path)
    store = open_store(s)
    apply_schema(store)
    _produce(s, 0, 3)
    stop, thread, out = _start(s, store)
    try:
        _wait(lambda: _counts(store) == (3 * 500 * 2, 3, 3, 3))
    finally:
        stop.set()
        thread.join(30)
        store.close()
    assert out[0].flushes >= 1
    # Inserts run in the background: the metric still counts every row inserted, once.
    inserted = out[0].metrics.registry.get_sample_value("distillwatch_sink_rows_total", {"table": "all"})
    assert inserted == sum(out[0].rows.values())


def test_clickhouse_outage_loses_nothing(broker: str, clickhouse_server: Any, chdb_path: Path) -> None:
    """Stop clickhouse-server under a running sink, produce more, restart it: every row arrives once."""
    s = _settings(broker, "server", clickhouse_server.tcp_port, chdb_path)
    stop, thread, out = _start(s)
    reader = open_store(s)
    try:
        _produce(s, 0, 2)
        _wait(lambda: reader.query(f"EXISTS TABLE {s.clickhouse_database}.feedback")[1] == [(1,)])
        _wait(lambda: _counts(reader) == (2000, 2, 2, 2))
        clickhouse_server.stop()
        _produce(s, 2, 8)  # 8 * 510 rows > sink_max_buffer_rows: the sink pauses, Kafka holds the rest
        time.sleep(3)
        clickhouse_server.start()
        reader.close()
        reader = open_store(s)
        _wait(lambda: _counts(reader) == (10 * 1000, 10, 10, 10), 60)
    finally:
        stop.set()
        thread.join(30)
        reader.close()
    assert out[0].retries >= 1
