"""HotPath checkpoints that interleave with batches still give an exactly-once effect after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from pipeline import processor
from pipeline.detection import DetectionConfig
from pipeline.engine import Engine
from pipeline.metrics import Metrics
from pipeline.processor import HotPath
from pipeline.settings import load_settings
from pipeline.simulate import SimConfig, generate

CFG = DetectionConfig()
S = load_settings(worker_commit_interval_s=3600.0)


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Rec:
    value: bytes
    offset: int
    key: bytes | None = None


class Log:
    """A producer whose messages are durable once ``flush`` returned (like acks=all)."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[str, bytes | None, bytes]] = []
        self.flushed = 0

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None) -> None:
        self.enqueued.append((topic, key, value))
        if len(self.enqueued) % 50 == 0:
            await asyncio.sleep(0)  # a real producer yields now and then

    async def flush(self) -> None:
        await asyncio.sleep(0)
        self.flushed = len(self.enqueued)

    def durable(self, name: str) -> list[tuple[bytes | None, bytes]]:
        """What survives a kill -9: the messages of ``name`` flushed so far."""
        return [(k, v) for t, k, v in self.enqueued[: self.flushed] if t == name]


def _hot(log: Log, changelog: list[tuple[bytes | None, bytes]], commits: list[int]) -> HotPath:
    async def commit(offsets: Mapping[Any, int]) -> bool:
        commits.append(max(offsets.values()))
        return True

    async def read(_part: int) -> AsyncIterator[tuple[bytes, bytes]]:
        for key, value in changelog:
            yield key or b"", value

    # a fixed wall clock (alert bytes comparable across runs), after the simulated events (2024): none is
    # "from the future" for DW_MAX_FUTURE_SKEW_S
    return HotPath(S, Engine(CFG), log, commit, read, Metrics(), wall_clock_ms=lambda: 1_790_000_000_000)


def _minute_totals(log: Log) -> dict[tuple[str, int], int]:
    """(account, minute) -> events of the highest version sent (what ClickHouse's views show)."""
    best: dict[tuple[str, int], tuple[int, int]] = {}
    for _, value in log.durable(S.topic_aggregates):
        for row in orjson.loads(value):
            key, version, events = (row[0], row[1]), row[2], row[3]
            if version >= best.get(key, (-1, 0))[0]:
                best[key] = (version, events)
    return {k: e for k, (_, e) in best.items()}


@pytest.mark.parametrize("chunk", [3, 1 << 30])
def test_crash_after_an_interleaved_checkpoint_counts_every_event_once(monkeypatch: Any, chunk: int) -> None:
    monkeypatch.setattr(processor, "SNAPSHOT_CHUNK", chunk)
    values = [orjson.dumps(d) for d in generate(SimConfig(seed=9, accounts=60, hours=1.5))]
    records = [Rec(v, i) for i, v in enumerate(values)]
    batches = [records[i : i + 40] for i in range(0, len(records), 40)]
    tp = TP(S.topic_requests, 0)

    async def uninterrupted() -> Log:
        log = Log()
        hot = _hot(log, [], [])
        await hot.on_assigned([0])
        for b in batches:
            await hot.on_batch(tp, b)
        await log.flush()
        return log

    async def crashed() -> tuple[Log, Log]:
        log, commits = Log(), []
        hot = _hot(log, [], commits)
        await hot.on_assigned([0])
        half = len(batches) // 2
        for b in batches[:half]:
            await hot.on_batch(tp, b)
        checkpoint = asyncio.create_task(hot.checkpoint())
        overlapped = 0
        for b in batches[half : half + 6]:  # batches run while the checkpoint dumps its chunks
            await asyncio.sleep(0)
            overlapped += not checkpoint.done()
            await hot.on_batch(tp, b)
        await checkpoint
        assert overlapped >= (3 if chunk == 3 else 0)
        for b in batches[half + 6 : half + 9]:  # processed, never checkpointed, then kill -9
            await hot.on_batch(tp, b)
        assert commits, "the checkpoint committed"
        restart = Log()
        hot2 = _hot(restart, log.durable(S.topic_state), [])
        await hot2.on_assigned([0])
        for b in batches:
            rest = [r for r in b if r.offset >= commits[-1]]
            if rest:
                await hot2.on_batch(tp, rest)
        await restart.flush()
        return log, restart

    ref = asyncio.run(uninterrupted())
    before, after = asyncio.run(crashed())
    totals = _minute_totals(before)
    for key, events in _minute_totals(after).items():
        totals[key] = max(totals.get(key, 0), events)  # replayed rows carry the same or higher versions
    assert totals == _minute_totals(ref)
    assert sum(totals.values()) == len({orjson.loads(v)["event_id"] for v in values})
