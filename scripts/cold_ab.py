"""The cold tier on and off, alternated on the same data (not collected by pytest).

    python scripts/cold_ab.py [--events 1000000] [--accounts 100000] [--seed 2024] [--runs 3]
    python scripts/cold_ab.py --sim-hours 48 --sim-accounts 3000 [--seed 103] [--runs 3]

Builds the ``bench`` data once (or, with ``--sim-hours``, the simulator's own traffic: its actors'
daily rhythms, unsplit), then runs the offline core (``bench``'s offline phase) in fresh processes,
alternating ``DW_FREEZE_IDLE_S=0`` (every account warm) and the default, ``--runs`` times each.
Prints every run's events/s, resident growth per active account (the process's RSS after the pass
minus before it), and the accounts frozen at the end; then the medians and their ratios.
"""

from __future__ import annotations

import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.benchdata import BenchData, make_data, script_parser  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import os, pickle, sys
from pipeline.benchparts import measure_offline, rss_bytes
from pipeline.detection import DetectionConfig
from pipeline.offline import OfflineRunner
from pipeline.settings import Settings
with open(sys.argv[1], "rb") as f:
    data = pickle.load(f)
s = Settings()
rss0 = rss_bytes(os.getpid())
runner = OfflineRunner(DetectionConfig.from_settings(s))
rate = measure_offline(s, data, runner)
grown = rss_bytes(os.getpid()) - rss0
e = runner.engine
print(rate, grown / e.accounts_tracked(), e.accounts_frozen() / e.accounts_tracked())
"""


def sim_data(hours: float, accounts: int, seed: int) -> BenchData:
    """The simulator's traffic as ``bench`` data (one account id per simulated actor)."""
    from pipeline.simulate import SimConfig, generate

    events = list(generate(SimConfig(seed=seed, accounts=accounts, hours=hours)))
    items: list[tuple[bytes | None, bytes]] = [(str(e["account_id"]).encode(), orjson.dumps(e)) for e in events]
    return BenchData(items, len({e["account_id"] for e in events}), len({e["event_id"] for e in events}))


def main() -> None:
    p = script_parser(__doc__, events=1_000_000, accounts=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--sim-hours", type=float, default=0.0, help="the simulator's own data, this many hours")
    p.add_argument("--sim-accounts", type=int, default=3000)
    args = p.parse_args()
    if args.sim_hours > 0:
        data = sim_data(args.sim_hours, args.sim_accounts, args.seed)
    else:
        data = make_data(args.events, args.accounts, args.seed)
    print(f"{len(data.items):,} events, {data.accounts:,} accounts", flush=True)
    default = Settings().freeze_idle_s
    results: dict[str, list[list[float]]] = {"warm": [], "cold": []}
    with tempfile.TemporaryDirectory() as tmp:
        blob = Path(tmp) / "data.pickle"
        blob.write_bytes(pickle.dumps(data))
        for i in range(args.runs):
            for name, idle in (("warm", 0), ("cold", default)):
                env = {**os.environ, "DW_FREEZE_IDLE_S": str(idle)}
                out = subprocess.run(
                    [sys.executable, "-c", MEASURE, str(blob)], capture_output=True, text=True, check=True, env=env
                ).stdout.split()
                rate, per_account, frozen = (float(x) for x in out)
                results[name].append([rate, per_account, frozen])
                print(f"run {i + 1} {name} (DW_FREEZE_IDLE_S={idle:>4}): {rate:>9,.0f} events/s, "
                      f"{per_account:>6,.0f} B per account, {frozen:.0%} frozen at the end", flush=True)  # fmt: skip
    med = {k: [statistics.median(r[j] for r in v) for j in range(3)] for k, v in results.items()}
    w, c = med["warm"], med["cold"]
    print(f"median: warm {w[0]:,.0f} events/s, {w[1]:,.0f} B/account; cold {c[0]:,.0f} events/s, "
          f"{c[1]:,.0f} B/account ({c[2]:.0%} frozen); cold/warm: rate {c[0] / w[0]:.2f}, "
          f"memory {c[1] / w[1]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
