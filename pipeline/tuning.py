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
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 2_000_000


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
