"""Load events into ``api.requests`` fast (aiokafka, large batches), keyed by account as the contract says.

Used by ``simulate --kafka``, ``replay``, ``demo`` and ``bench``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from pipeline.errors import DistillWatchError
from pipeline.settings import Settings


async def produce_values(
    s: Settings, topic: str, items: Iterable[tuple[bytes | None, bytes]], total: int | None = None,
    progress: bool = True, desc: str = "producing",
) -> int:  # fmt: skip
    """Produce (key, value) pairs; returns how many were acknowledged by the broker."""
    from aiokafka import AIOKafkaProducer
    from tqdm import tqdm

    from pipeline.worker import kafka_consumer_kwargs

    producer = AIOKafkaProducer(
        linger_ms=20, max_batch_size=1 << 20, max_request_size=4 << 20, **kafka_consumer_kwargs(s)
    )
    await producer.start()
    sent = 0
    bar = tqdm(total=total, desc=desc, unit="ev", disable=not progress, mininterval=0.5)
    try:
        pending: list[asyncio.Future[Any]] = []
        for key, value in items:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                sent += len(pending)
                bar.update(len(pending))
                pending = []
        await asyncio.gather(*pending)
        sent += len(pending)
        bar.update(len(pending))
    finally:
        bar.close()
        await producer.stop()
    return sent


def event_items(events: Iterable[dict[str, Any]]) -> Iterator[tuple[bytes | None, bytes]]:
    """Contract events -> (account key, JSON value)."""
    for ev in events:
        acct = ev.get("account_id")
        yield (acct.encode() if isinstance(acct, str) else None), orjson.dumps(ev)


def file_items(path: Path) -> Iterator[tuple[bytes | None, bytes]]:
    """JSONL lines -> (key, raw line); a line that is not JSON is sent as-is (the worker dead-letters it)."""
    with path.open("rb") as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            try:
                acct = orjson.loads(line).get("account_id")
            except (orjson.JSONDecodeError, AttributeError):
                acct = None
            yield (acct.encode() if isinstance(acct, str) else None), line


def count_lines(path: Path) -> int:
    """Number of non-empty lines (for progress bars)."""
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.events)
    if not path.is_file():
        raise DistillWatchError(f"no such events file: {path}")
    n = asyncio.run(produce_values(settings, settings.topic_requests, file_items(path), count_lines(path)))
    print(f"replayed {n} events from {path} into {settings.topic_requests}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="send an events JSONL file into api.requests")
    p.add_argument("events", help="events JSONL file")
    p.set_defaults(func=run)
