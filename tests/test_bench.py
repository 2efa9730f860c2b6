"""``bench`` works end to end at a tiny size (the real figures come from the full-size command in the README)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from pipeline.bench import TARGETS
from pipeline.cli import main

pytestmark = pytest.mark.integration


def test_bench_runs_every_phase_at_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [
        "bench", "--events", "4000", "--accounts", "400", "--repeat", "1", "--latency-seconds", "3",
        "--latency-rate", "500", "--sink-rows", "5000", "--workdir", str(tmp_path / "w"), "--json", str(out),
        "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    doc = orjson.loads(out.read_bytes())
    median = doc["median"]
    assert doc["events"] == 4000
    for key in ("ceiling_events_per_s", "offline_events_per_s", "worker_events_per_s", "sink_rows_per_s"):
        assert median[key] > 0, key
    assert median["events_counted_in_clickhouse"] >= 3900  # every distinct event counted (retries collapse)
    assert median["sink_rows"] == 5000
    # the worker's own CPU over the timed span: some was used, and no more than the machine's cores give
    assert median["worker_cpu_us_per_event"] > 0
    assert 0 < median["worker_cpu_share"] <= (os.cpu_count() or 1)
    assert set(TARGETS) <= set(median)
