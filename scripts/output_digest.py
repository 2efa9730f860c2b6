"""A digest of everything the detection core outputs on the benchmark data (not collected by pytest).

    python scripts/output_digest.py [--events 300000] [--accounts 30000] [--seed 2024]

Builds the data ``distillwatch bench`` builds (``benchdata.make_data``), feeds it through one
``Engine`` and ``ClusterDetector`` as ``OfflineRunner`` does (outputs drained every 4,096 events,
a final tick past the last event), and prints the counts of alerts, aggregate rows, score rows and
summaries with a SHA-256 over all of them (their ``repr``, in order) and the final checkpoint.
Run it on two commits: equal digests mean a change left every output as it was.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.benchdata import data_from_cli  # noqa: E402
from pipeline.clusters import ClusterDetector  # noqa: E402
from pipeline.contract import decode_event  # noqa: E402
from pipeline.detection import DetectionConfig  # noqa: E402
from pipeline.engine import Engine  # noqa: E402
from pipeline.settings import Settings  # noqa: E402


def main() -> None:
    data = data_from_cli(__doc__, events=300_000, accounts=30_000)
    cfg = DetectionConfig.from_settings(Settings())
    engine, clusters = Engine(cfg), ClusterDetector(cfg)
    digest = hashlib.sha256()
    counts = [0, 0, 0, 0]

    def drain() -> None:
        out = engine.take_outputs()
        for i, rows in enumerate((out.alerts, out.aggregates, out.scores, out.summaries)):
            counts[i] += len(rows)
            for r in rows:
                digest.update(repr(r).encode())
        for s in out.summaries:
            for alert in clusters.add_summary(s):
                counts[0] += 1
                digest.update(repr(alert).encode())

    clock = 0
    for offset, (_, value) in enumerate(data.items):
        event = decode_event(value)
        clock = max(clock, event.ts_ms)
        engine.add(event, 0, offset)
        if offset % 4096 == 4095:
            drain()
    engine.advance(0, clock + cfg.max_score_gap_ms)  # as OfflineRunner.finish
    drain()
    for _, blob in engine.dirty_snapshots(0):
        digest.update(blob)
    print(f"alerts {counts[0]:,}  aggregates {counts[1]:,}  scores {counts[2]:,}  summaries {counts[3]:,}")
    print(f"sha256 {digest.hexdigest()}")


if __name__ == "__main__":
    main()
