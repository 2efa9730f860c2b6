"""Where the worker's time goes during ``bench`` (not collected by pytest; needs ``pip install py-spy``).

    python scripts/worker_profile.py [--events 1000000] [--accounts 100000] [--seed 2024] [--delay 10] [--seconds 60]

Starts ``distillwatch bench --repeat 1`` at that size, waits for its worker phase (the worker process
appears once the ceiling and offline phases are done), lets it run ``--delay`` s (start-up, partition
assignment), samples it with py-spy for ``--seconds`` (all threads, Python frames: the compiled core
shows up as the Python function that calls it), lets the bench finish its run, and prints the share
of the samples under each part of the worker. The parts overlap where one
calls the other (``HotPath._ship`` runs inside ``HotPath.on_batch``); "the core" is the samples whose
innermost Python frame is ``on_batch`` itself: ``decode_event``, ``Engine.add`` and ``take_outputs``,
compiled.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.benchdata import script_parser  # noqa: E402

PARTS = (  # (label, frame name): samples with that frame anywhere on their stack
    ("hot path, all of it (HotPath.on_batch)", "HotPath.on_batch"),
    ("  producing its outputs (HotPath._ship)", "HotPath._ship"),
    ("checkpoints: account records, flush, commit (HotPath.checkpoint)", "HotPath.checkpoint"),
    ("cluster agent: summaries decoded and linked (cluster_agent)", "cluster_agent"),
    ("cluster detector snapshots (ClusterState._write_if)", "ClusterState._write_if"),
    ("producer thread: requests encoded and sent (Sender._send_produce_req)", "Sender._send_produce_req"),
    ("fetching: records unpacked (Fetcher.fetched_records)", "Fetcher.fetched_records"),
    ("event loop waiting (EpollSelector.select)", "EpollSelector.select"),
)


def _worker_pid(bench: int) -> int | None:
    """The bench's worker (a ``pipeline.cli worker`` child of process ``bench``), if it runs."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if parent == bench and b"worker" in cmd:
            return int(entry.name)
    return None


def main() -> None:
    p = script_parser(__doc__, events=1_000_000, accounts=100_000)  # the bench's data flags
    p.add_argument("--delay", type=float, default=10.0)
    p.add_argument("--seconds", type=int, default=60)
    args = p.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("worker_profile: py-spy is not installed (pip install py-spy)")
    work = Path(tempfile.mkdtemp(prefix="dw-wprof-"))
    cmd = [sys.executable, "-m", "pipeline.cli", "bench", "--events", str(args.events), "--accounts",
           str(args.accounts), "--seed", str(args.seed), "--repeat", "1",
           "--json", str(work / "bench.json")]  # fmt: skip
    with open(work / "bench.log", "wb") as log:
        bench = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        while (pid := _worker_pid(bench.pid)) is None:
            if bench.poll() is not None:
                sys.exit(f"worker_profile: bench ended before its worker phase; see {work / 'bench.log'}")
            time.sleep(0.5)
        print(f"worker {pid}: sampling {args.seconds} s after {args.delay:g} s", flush=True)
        time.sleep(args.delay)
        raw = work / "worker.raw"
        subprocess.run(["py-spy", "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "-o", str(raw),
                        "--duration", str(args.seconds), "--nonblocking"], check=True, capture_output=True)  # fmt: skip
    except BaseException:
        bench.send_signal(signal.SIGINT)  # the bench tears its broker, worker and ClickHouse down
        raise
    print("letting the bench finish its run (sink and latency phases)", flush=True)
    if bench.wait() != 0:
        print(f"worker_profile: the bench failed after sampling (exit {bench.returncode}); see {work / 'bench.log'}")
    under: Counter[str] = Counter()
    total = core = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [f.split(" (")[0] for f in stack.split(";")]
        total += int(n)
        core += int(n) if frames[-1] == "HotPath.on_batch" else 0
        for _, name in PARTS:  # a frame named as py-spy names it, or a nested function by its own name
            if any(f == name or f.endswith("." + name) for f in frames):
                under[name] += int(n)
    if not total:
        sys.exit(f"worker_profile: py-spy took no samples of worker {pid}")
    print(f"{total:,} samples (all threads)")
    print(f"{100 * core / total:5.1f} %  the core: decode + engine + outputs drained (innermost frame on_batch)")
    for label, name in PARTS:
        print(f"{100 * under[name] / total:5.1f} %  {label}")


if __name__ == "__main__":
    main()
