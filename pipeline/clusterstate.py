"""Durable state for the cluster detector agent: chunked snapshots in a Faust table, manual acks.

The summaries agent does not let Faust ack each message: it acks the
messages a snapshot covers only after writing that snapshot (with the last
offset it applied) to the table. After a crash the table restores the
snapshot, Faust redelivers from the committed offset, and messages the
snapshot already covers are skipped, so no summary is applied twice or lost.

The table holds one snapshot, two while one is written: snapshots alternate
between two slots of stable keys (``detector/<slot>/<i>``), the meta record
names the complete one and is written after its parts, and the other slot is
emptied only then. A crash half-way through a write leaves the previous
snapshot whole. (Keys that carried the part count, as before, left every
earlier snapshot of another size in the in-memory table for good.) Parts are
zlib-compressed JSON: 43.6 MB of JSON became 12.9 MB at the benchmark's 100,653 accounts
(``python scripts/core_profile.py``, eighteenth session). The worker's table keeps them in files,
not in the heap (``pipeline/tablestore.py``).

Cadence: a snapshot every ``every_s`` while summaries flow, and one as soon
as the agent has been quiet for ``quiet_s`` or a rebalance starts (``release``,
called by a timer), so held acks never block Faust's ``wait_empty``. The
snapshot serializes and compresses the whole detector (0.26 s and 0.25 s at those 100,653 accounts,
same command, eighteenth session), so it is never taken after every message.

>>> from types import SimpleNamespace
>>> from pipeline.detection import DetectionConfig
>>> table: dict[bytes, bytes] = {}
>>> state = ClusterState(ClusterDetector(DetectionConfig()), table, every_s=10.0)
>>> state.applied(SimpleNamespace(ack=lambda: None), 41)
>>> state.release(now=state.last_message + 5.0)
True
>>> sorted(table)
[b'detector/0/0', b'detector/meta']
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from pipeline.chunks import CHUNK_BYTES, part_keys, pieces
from pipeline.clusters import ClusterDetector

_META = b"detector/meta"
_SLOTS = 2


def _slot_key(slot: int, i: int) -> bytes:
    return f"detector/{slot}/{i}".encode()


class ClusterState:
    """Glue between a ``ClusterDetector`` and a Faust table holding its snapshot."""

    def __init__(
        self,
        detector: ClusterDetector,
        table: MutableMapping[bytes, bytes],
        every_s: float,
        quiet_s: float = 2.0,
    ) -> None:
        self.detector = detector
        self.table = table
        self.every_s = every_s
        self.quiet_s = quiet_s
        self.applied_offset = -1
        self.busy = False  # a message is being applied and not yet recorded (no snapshot then)
        self.slot = 0  # the slot the next snapshot goes to
        self.last_message = time.monotonic()
        self._restored = False
        self._pending: list[Any] = []
        self._last = time.monotonic()

    def restore_once(self) -> None:
        """Load the latest complete snapshot from the (recovered) table, once."""
        if self._restored:
            return
        self._restored = True
        meta = self.table.get(_META)
        if not meta:
            return
        fields = [int(x) for x in meta.split(b":")]
        offset, n = fields[0], fields[1]
        if len(fields) == 3:
            keys = [_slot_key(fields[2], i) for i in range(n)]
            self.slot = (fields[2] + 1) % _SLOTS
        else:  # written before the slots: keys carried the part count
            keys = [key.encode() for key in part_keys("detector", n)]
        parts = [self.table.get(key) for key in keys]
        if all(p is not None for p in parts):
            blob = b"".join(p for p in parts if p is not None)
            self.detector.restore(blob if blob[:1] == b"{" else zlib.decompress(blob))
            self.applied_offset = offset

    def should_skip(self, offset: int) -> bool:
        """True for a redelivered message the restored snapshot already covers."""
        return offset <= self.applied_offset

    def hold(self, event: Any) -> None:
        """Keep a message's ack until the next snapshot is written."""
        self._pending.append(event)
        self.last_message = time.monotonic()

    def applied(self, event: Any, offset: int) -> None:
        """Remember a processed message; it is acked at the next snapshot."""
        self.applied_offset = offset
        self.hold(event)

    @contextmanager
    def applying(self, event: Any, offset: int) -> Iterator[None]:
        """Around applying a message (awaits inside are fine): no snapshot runs until it is
        recorded, so a snapshot never covers a message without its offset; not recorded on error."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False
        self.applied(event, offset)

    def maybe_snapshot(self, now: float | None = None) -> bool:
        """After a message: write the snapshot if ``every_s`` passed since the last one."""
        now = time.monotonic() if now is None else now
        return self._write_if(now - self._last >= self.every_s, now)

    def release(self, rebalancing: bool = False, now: float | None = None) -> bool:
        """From a timer: snapshot and ack what is held once the agent is quiet (or a rebalance waits)."""
        now = time.monotonic() if now is None else now
        return self._write_if(rebalancing or now - self.last_message >= self.quiet_s, now)

    def _write_if(self, due: bool, now: float) -> bool:
        if not due or not self._pending or self.busy:
            return False
        blob = zlib.compress(self.detector.snapshot(), 1)
        table, slot = self.table, self.slot
        parts = pieces(blob, CHUNK_BYTES)
        n = len(parts)
        for i, part in enumerate(parts):
            table[_slot_key(slot, i)] = part
        table[_META] = f"{self.applied_offset}:{n}:{slot}".encode()
        # Only now is the new snapshot the restorable one: drop everything else (the other slot,
        # this slot's parts beyond n, pre-slot keys).
        keep = {_slot_key(slot, i) for i in range(n)} | {_META}
        for key in [k for k in table if k not in keep]:
            del table[key]
        self.slot = (slot + 1) % _SLOTS
        for event in self._pending:
            event.ack()
        self._pending.clear()
        self._last = now
        return True
