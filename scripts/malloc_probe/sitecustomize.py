"""What a worker's memory is made of while it runs (a diagnostic, not collected by pytest).

    PYTHONPATH=scripts/malloc_probe distillwatch bench --events 1000000 --accounts 100000 --repeat 1

Python imports this ``sitecustomize`` at start-up in every process that has the folder on its path;
in a ``distillwatch worker`` process it starts a thread that, every ``EVERY_S`` seconds, appends to
``.distillwatch/malloc-probe/worker-<pid>.log`` (under the current directory): resident memory;
glibc's heap (in use, free) and its separately mapped blocks (``mallinfo2``); CPython's small-object
allocator (arenas, bytes in allocated and in free blocks, the busiest size classes, from
``sys._debugmallocstats``); and the most numerous objects the cyclic GC tracks, by type. The
worker pauses while the probe samples (it holds the GIL): leave it out of measured runs.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import sys
import threading
import time
from collections import Counter
from pathlib import Path

EVERY_S = 15


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                  "keepcost")
    ]


def _pymalloc_stats(path: Path) -> str:
    """``sys._debugmallocstats`` (written to the C stderr) captured through a file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    return path.read_text()


def _sample(out: Path, t: int) -> str:
    mi = ctypes.CDLL("libc.so.6").mallinfo2
    mi.restype = _MallInfo2
    m = mi()
    rss = int(Path(f"/proc/{os.getpid()}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    stats = _pymalloc_stats(out.with_suffix(".tmp"))
    field = {k: int(v.replace(",", "")) for k, v in re.findall(r"# (arenas allocated current|bytes in allocated blocks|bytes in available blocks)\s*=\s*([\d,]+)", stats)}  # noqa: E501
    classes = sorted(
        ((int(s), int(u), int(a)) for s, u, a in re.findall(r"^\s+\d+\s+(\d+)\s+\d+\s+(\d+)\s+(\d+)$", stats, re.M)),
        key=lambda c: -c[0] * (c[1] + c[2]),
    )[:8]
    types = Counter(type(o).__name__ for o in gc.get_objects()).most_common(8)
    mb = 1e6
    used, free = field.get("bytes in allocated blocks", 0) / mb, field.get("bytes in available blocks", 0) / mb
    return (
        f"t={t}s rss={rss / mb:.1f}MB glibc: heap {m.arena / mb:.1f} (in use {m.uordblks / mb:.1f}, "
        f"free {m.fordblks / mb:.1f}), mapped {m.hblkhd / mb:.1f} in {m.hblks} blocks; "
        f"pymalloc: {field.get('arenas allocated current', 0)} arenas, allocated {used:.1f}, free {free:.1f}\n"
        "  size classes (size: in use/free blocks) " + ", ".join(f"{s}: {u}/{a}" for s, u, a in classes) + "\n"
        "  GC-tracked objects " + ", ".join(f"{n} {c}" for n, c in types) + "\n"
    )  # fmt: skip


def _loop(out: Path) -> None:
    t = 0
    while True:
        time.sleep(EVERY_S)
        t += EVERY_S
        line = _sample(out, t)
        with out.open("a") as f:
            f.write(line)


if "worker" in sys.argv:
    _out = Path(".distillwatch/malloc-probe") / f"worker-{os.getpid()}.log"
    _out.parent.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=_loop, args=(_out,), name="malloc-probe", daemon=True).start()
