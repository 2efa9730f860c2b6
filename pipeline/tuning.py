"""Process-level tuning for the hot path.

CPython's cyclic garbage collector runs a collection every 700 container
allocations by default; a worker holding 100,000 account states and
allocating a few objects per event spends most of its time there (measured:
decode alone went from ~40,000 to ~130,000 events/s with the thresholds
below). The pipeline creates no reference cycles on the hot path, so
collections can be rare; ``gc.freeze`` moves everything alive at start-up
out of the collector's sight. Each young-generation collection walks every
container allocated since the previous one that is still alive (new account
states, minute buckets held for late events, rows not yet drained): at
100,000 accounts one took ~0.25 s, so they are spaced by 2,000,000 net
allocations (``python scripts/core_profile.py`` prints the collections and
their share of a pass; at 1 M events: 17 and 5.7 % with the earlier 200,000,
2 and 1.5 % with this threshold).

glibc's ``malloc`` serves blocks of 128 KB and more with their own mapping, returned to the OS when
freed, but raises that threshold to the size of each such block freed (up to 32 MB): after the
worker has freed a few multi-megabyte buffers (fetch responses, checkpoint and snapshot batches),
blocks of that size come from the heap, which gives memory back only from its top. ``tune_malloc``
pins the threshold (``DW_WORKER_MALLOC_MMAP_THRESHOLD``), which stops the adjustment: at the benchmark's
300,000 events and 30,549 accounts the worker's resident growth per account went from 7,170 and
7,253 B to 5,886 and 6,445 B (``MALLOC_MMAP_THRESHOLD_=131072 distillwatch bench --events 300000
--accounts 30000``, glibc's variable for the same setting, two runs each; full size: README).
The price is CPU: in a later session, alternated, the worker's CPU per event was 56.2 and 60.8 µs
pinned against 51.5 and 56.1 µs adaptive (``DW_WORKER_MALLOC_MMAP_THRESHOLD=0``, same command), up
to ~9 % (means of two), about the spread between runs, for ~22 % less resident growth.
"""

from __future__ import annotations

import ctypes
import gc

GEN0_THRESHOLD = 2_000_000
M_MMAP_THRESHOLD = -3  # mallopt parameter (glibc malloc.h)


def preload() -> None:
    """Import what the first batch would import (River, the largest import) at start-up.

    Loaded inside the first batch it stalled that batch, and its memory looked like
    account state (the bench's baseline is taken just before the first event).
    """
    import river.anomaly  # noqa: F401


def tune_gc() -> None:
    """Make cyclic GC rare and ignore the objects that exist now (idempotent)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 50, 100)


def tune_malloc(mmap_threshold: int) -> bool:
    """Pin glibc's mmap threshold at ``mmap_threshold`` bytes (0: leave malloc adaptive); True if
    applied. Without glibc (another C library, another OS) this does nothing and returns False.

    >>> tune_malloc(0)
    False
    """
    if mmap_threshold <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))
