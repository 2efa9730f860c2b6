"""Analyst feedback: the ``feedback`` subcommand writes verdicts; workers follow the topic.

A verdict is one JSON object per message on ``anomaly.feedback`` (a
``FeedbackRow``), keyed by the account (or alert) it is about. Every worker
reads the whole topic from the beginning, so allowlists survive restarts and
rebalances without any extra state.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import orjson

from pipeline.errors import DistillWatchError
from pipeline.records import VERDICTS, FeedbackRow
from pipeline.settings import Settings


def parse_feedback(value: bytes) -> list[FeedbackRow]:
    """Decode a feedback message (an object, or an array of objects); malformed ones are rejected."""
    data = orjson.loads(value)
    items = data if isinstance(data, list) else [data]
    rows = []
    for item in items:
        if not isinstance(item, dict) or item.get("verdict") not in VERDICTS:
            raise ValueError("feedback needs a verdict in " + ", ".join(VERDICTS))
        rows.append(FeedbackRow(**{k: item[k] for k in FeedbackRow.__dataclass_fields__ if k in item}))
    return rows


async def follow_feedback(s: Settings, poll_s: float = 1.0) -> AsyncIterator[FeedbackRow]:
    """Yield every verdict ever written, then new ones as they arrive (never returns)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from pipeline.worker import kafka_consumer_kwargs

    consumer = AIOKafkaConsumer(enable_auto_commit=False, group_id=None, **kafka_consumer_kwargs(s))
    await consumer.start()
    try:
        parts: set[int] | None = None
        while not parts:
            parts = consumer.partitions_for_topic(s.topic_feedback)
            if not parts:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(poll_s)
        tps = [TopicPartition(s.topic_feedback, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batch = await consumer.getmany(timeout_ms=int(poll_s * 1000))
            for records in batch.values():
                for rec in records:
                    try:
                        rows = parse_feedback(rec.value or b"")
                    except ValueError:
                        continue  # a malformed verdict is an analyst typo, not a reason to stop detection
                    for row in rows:
                        yield row
    finally:
        await consumer.stop()


def send_feedback(s: Settings, row: FeedbackRow) -> None:
    """Produce one verdict (kafka-python, synchronous: this is a CLI)."""
    from kafka import KafkaProducer

    kw: dict[str, Any] = dict(s.kafka_client_kwargs())
    if s.kafka_ssl_cafile:
        kw["ssl_cafile"] = s.kafka_ssl_cafile
    producer = KafkaProducer(**kw)
    try:
        key = (row.account_id or row.alert_id).encode()
        # A one-row batch: the same shape as every other row topic (the sink decodes arrays).
        producer.send(s.topic_feedback, key=key, value=orjson.dumps([asdict(row)])).get(timeout=30)
    finally:
        producer.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not (args.account or args.alert):
        raise DistillWatchError("name an --account or an --alert")
    row = FeedbackRow(
        verdict=args.verdict,
        account_id=args.account or "",
        alert_id=args.alert or "",
        analyst=args.analyst,
        note=args.note,
        ts_ms=int(time.time() * 1000),
    )
    send_feedback(settings, row)
    print(f"recorded {row.verdict} for {row.account_id or row.alert_id}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("feedback", help="mark an alert true/false positive, or allowlist an account")
    p.add_argument("verdict", choices=VERDICTS)
    p.add_argument("--account", help="account id the verdict is about")
    p.add_argument("--alert", help="alert id the verdict is about")
    p.add_argument("--analyst", default="", help="who decided")
    p.add_argument("--note", default="", help="free text (no prompt text, please)")
    p.set_defaults(func=run)
