"""Replaying a file offline gives the same alerts as the live stream (one partition, same order)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from stackutil import isolated_settings

from pipeline.detection import DetectionConfig
from pipeline.offline import OfflineRunner
from pipeline.replay import file_items, produce_values
from pipeline.simulate import SimConfig, generate
from pipeline.stack import LocalStack, read_topic
from pipeline.validation import decode_event

pytestmark = pytest.mark.integration


def _comparable(alert: dict[str, object]) -> tuple[object, ...]:
    """Everything but the wall-clock ``emitted_at``."""
    return tuple(sorted((k, orjson.dumps(v)) for k, v in alert.items() if k != "emitted_at"))


def test_stream_and_offline_emit_the_same_alerts(broker: str, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    sample = generate(SimConfig(seed=5, accounts=80, hours=4))
    events_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in sample))
    s = isolated_settings(broker, tmp_path, partitions=1)

    runner = OfflineRunner(DetectionConfig.from_settings(s))
    offline = []
    for offset, (_, value) in enumerate(file_items(events_file)):
        offline.extend(runner.feed(decode_event(value), offset))
    offline.extend(runner.drain())
    expected = sorted(_comparable(a.to_dict(0)) for a in offline)
    assert len(expected) >= 10, "the sample must raise alerts for the comparison to mean anything"

    with LocalStack.create(s, tmp_path, with_broker=False) as stack:
        stack.start_worker()
        asyncio.run(produce_values(s, s.topic_requests, file_items(events_file), progress=False))
        stack.wait_drained(s.app_id, s.topic_requests, timeout_s=120)
        stack.wait_drained(s.app_id, s.topic_summaries, timeout_s=60)
        streamed = sorted(_comparable(orjson.loads(v)) for v in read_topic(s, s.topic_alerts))

    assert streamed == expected
