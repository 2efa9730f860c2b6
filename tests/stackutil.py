"""Helpers for integration tests that run real workers against the session's real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pipeline.settings import Settings, load_settings


def isolated_settings(bootstrap: str, tmp: Path, partitions: int = 2, **overrides: Any) -> Settings:
    """Settings with topic names and group ids unique to one test (the broker is shared)."""
    tag = uuid.uuid4().hex[:8]
    topics = {
        name: f"t{tag}.{name.removeprefix('topic_')}"
        for name in Settings.model_fields
        if name.startswith("topic_")
    }
    return load_settings(
        kafka_bootstrap=bootstrap,
        kafka_partitions=partitions,
        app_id=f"dw-{tag}",
        sink_group=f"sink-{tag}",
        clickhouse_path=tmp / "chdb",
        worker_data_dir=tmp / "worker",
        worker_commit_interval_s=0.5,
        **topics,
        **overrides,
    )


def consume_all(s: Settings, topic: str, until: Callable[[list[Any]], bool], timeout_s: float = 60.0) -> list[Any]:
    """Read ``topic`` from the beginning until ``until(records)`` holds (or fail after timeout)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
        consumer_timeout_ms=500, **s.kafka_client_kwargs(),
    )  # fmt: skip
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic}: got {len(records)} records")
            for rec in consumer:
                records.append(rec)
    finally:
        consumer.close()
    return records


def produce(s: Settings, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
    """Produce raw (key, value) pairs synchronously."""
    from kafka import KafkaProducer

    producer = KafkaProducer(max_request_size=4 << 20, **s.kafka_client_kwargs())
    try:
        for key, value in items:
            producer.send(topic, key=key, value=value)
        producer.flush(30)
    finally:
        producer.close()


def event(i: int, account: str = "acct-1", ts: int = 1_790_000_000_000, **extra: Any) -> dict[str, Any]:
    """A valid contract event."""
    ev: dict[str, Any] = {
        "event_id": f"ev-{i}", "ts": ts + i * 1000, "account_id": account, "model": "frontier-2",
        "status": 200, "input_tokens": 100, "output_tokens": 300,
        "client": {"ip": "198.51.100.7", "asn": 64500, "user_agent": "sdk/1.0"},
        "prompt": {"simhash": f"{i:016x}", "template_hash": "ab12", "category": "chat"},
    }  # fmt: skip
    ev.update(extra)
    return ev


def encode(ev: dict[str, Any]) -> tuple[bytes, bytes]:
    return ev["account_id"].encode(), orjson.dumps(ev)


def metrics_text(port: int) -> str:
    """The worker's Prometheus exposition (empty if it does not answer yet)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()
    except OSError:
        return ""


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    import re

    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    return 0.0
