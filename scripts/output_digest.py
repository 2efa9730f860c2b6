"""A digest of everything the detection core outputs on the benchmark data (not collected by pytest).

    python scripts/output_digest.py [--events 300000] [--accounts 30000] [--seed 2024]

Builds the data ``distillwatch bench`` builds (``benchdata.make_data``), feeds it through an
``OfflineRunner`` (outputs drained every 4,096 events, a final tick past the last event), and
prints the counts of alerts, aggregate rows, score rows and summaries with a SHA-256 over all of
them (their ``repr``, in order), then every account's final state (its changelog record by id,
frozen accounts' as frozen, the checkpoint bookkeeping flag ``dirty`` left out) and the population
model.
Run it on two commits: equal digests mean a change left every output as it was (the digest of
the outputs alone, printed first, compares them across a change of the state's form).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.account import AccountState  # noqa: E402
from pipeline.alerts import Alert  # noqa: E402
from pipeline.benchdata import data_from_cli  # noqa: E402
from pipeline.detection import DetectionConfig  # noqa: E402
from pipeline.offline import OfflineRunner  # noqa: E402
from pipeline.records import Outputs  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.validation import decode_event  # noqa: E402


class DigestRunner(OfflineRunner):
    """``OfflineRunner`` hashing every output it routes: account alerts, aggregate rows, score rows
    and summaries (their ``repr``, in order), then the cluster alerts."""

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.digest = hashlib.sha256()
        self.counts = [0, 0, 0, 0]

    def route(self, out: Outputs) -> list[Alert]:
        for i, rows in enumerate((out.alerts, out.aggregates, out.scores, out.summaries)):
            self.counts[i] += len(rows)
            for r in rows:
                self.digest.update(repr(r).encode())
        alerts = super().route(out)
        for alert in alerts[len(out.alerts) :]:
            self.counts[0] += 1
            self.digest.update(repr(alert).encode())
        return alerts


def main() -> None:
    data = data_from_cli(__doc__, events=300_000, accounts=30_000)
    runner = DigestRunner(DetectionConfig.from_settings(Settings()))
    for offset, (_, value) in enumerate(data.items):
        runner.feed(decode_event(value), offset)
    runner.finish()
    outputs_only = runner.digest.hexdigest()
    dirty = AccountState.__slots__.index("dirty")
    for sh in runner.engine.shards.values():
        states = {a: st.dump() for a, st in sh.accounts.items()}
        cold = getattr(sh, "cold", None)  # absent before the cold tier: the digest compares commits
        states.update({a: orjson.loads(cold.record(a)) for a in cold.blobs} if cold is not None else {})
        for a in sorted(states):
            states[a][dirty] = False
            runner.digest.update(orjson.dumps(states[a]))
        runner.digest.update(sh.scorer.snapshot())
    frozen = getattr(runner.engine, "frozen", 0)
    alerts, aggregates, scores, summaries = runner.counts
    print(f"alerts {alerts:,}  aggregates {aggregates:,}  scores {scores:,}  summaries {summaries:,}  "
          f"freezes {frozen:,}")  # fmt: skip
    print(f"sha256 of the outputs alone {outputs_only}")
    print(f"sha256 {runner.digest.hexdigest()}")


if __name__ == "__main__":
    main()
