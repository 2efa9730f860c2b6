"""The compiled core against its own Python source, or against another checkout, alternated on the
same data (not collected by pytest).

    python scripts/compiled_ab.py [--events 300000] [--accounts 30000] [--seed 2024] [--runs 3]
    python scripts/compiled_ab.py --baseline DIR   # DIR: a checkout built in place, e.g.
        git worktree add /tmp/base <commit> && (cd /tmp/base && python setup.py build_ext --inplace)

Builds the ``bench`` data once, copies pipeline/'s Python sources (no compiled modules) to a
temporary folder (or takes ``--baseline``'s pipeline/ as it is), then measures the offline core
(``bench``'s offline phase: decode + engine + cluster detector, as ``evaluate`` runs) in fresh
processes, alternating the installed (compiled) package and the other one, ``--runs`` times each.
Prints every run, the medians and their ratio.
"""

from __future__ import annotations

import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.benchdata import make_data, script_parser  # noqa: E402
from pipeline.compiled import summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEASURE = """
import pickle, sys
sys.path.insert(0, sys.argv[1])
from pipeline.benchparts import measure_offline
from pipeline.compiled import summary
from pipeline.settings import Settings
with open(sys.argv[2], "rb") as f:
    data = pickle.load(f)
print(f"{measure_offline(Settings(), data):.0f} {summary()}")
"""


def main() -> None:
    p = script_parser(__doc__, events=300_000, accounts=30_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--baseline", type=Path, help="a checkout built in place, instead of the interpreted copy")
    args = p.parse_args()
    if args.baseline and not (args.baseline / "pipeline").is_dir():
        p.error(f"--baseline {args.baseline}: no pipeline/ package there")
    data, runs = make_data(args.events, args.accounts, args.seed), args.runs
    other = "baseline" if args.baseline else "interpreted"
    with tempfile.TemporaryDirectory() as tmp:
        other_root = args.baseline or Path(tmp) / "pure"
        if not args.baseline:
            shutil.copytree(ROOT / "pipeline", other_root / "pipeline", ignore=shutil.ignore_patterns("*.so", "*.c"))
        blob = Path(tmp) / "data.pickle"
        blob.write_bytes(pickle.dumps(data))
        rates: dict[str, list[float]] = {"compiled": [], other: []}
        for i in range(runs):
            for name, root in (("compiled", ROOT), (other, other_root)):
                out = subprocess.run(
                    [sys.executable, "-c", MEASURE, str(root), str(blob)], capture_output=True, text=True, check=True
                ).stdout.split(maxsplit=1)
                rates[name].append(float(out[0]))
                print(f"run {i + 1} {name:11s} {float(out[0]):>9,.0f} events/s  ({out[1].strip()})", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"median: compiled {med['compiled']:,.0f}, {other} {med[other]:,.0f} events/s, "
          f"ratio {med['compiled'] / med[other]:.2f} ({summary()} installed)")  # fmt: skip


if __name__ == "__main__":
    main()
