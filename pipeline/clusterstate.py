"""Durable state for the cluster detector agent: chunked snapshots in a Faust table, manual acks.

The summaries agent does not let Faust ack each message: it acks the
messages a snapshot covers only after writing that snapshot (with the last
offset it applied) to the table. After a crash the table restores the
snapshot, Faust redelivers from the committed offset, and messages the
snapshot already covers are skipped, so no summary is applied twice or lost.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from pipeline.chunks import part_keys, split
from pipeline.engine import ClusterDetector

_META = b"detector/meta"


class ClusterState:
    """Glue between a ``ClusterDetector`` and a Faust table holding its snapshot."""

    def __init__(self, detector: ClusterDetector, table: MutableMapping[bytes, bytes], every_s: float) -> None:
        self.detector = detector
        self.table = table
        self.every_s = every_s
        self.applied_offset = -1
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
        offset, n = (int(x) for x in meta.split(b":"))
        parts = [self.table.get(key.encode()) for key in part_keys("detector", n)]
        if all(p is not None for p in parts):
            self.detector.restore(b"".join(p for p in parts if p is not None))
            self.applied_offset = offset

    def should_skip(self, offset: int) -> bool:
        """True for a redelivered message the restored snapshot already covers."""
        return offset <= self.applied_offset

    def hold(self, event: Any) -> None:
        """Keep a message's ack until the next snapshot is written."""
        self._pending.append(event)

    def applied(self, event: Any, offset: int) -> None:
        """Remember a processed message; it is acked at the next snapshot."""
        self.applied_offset = offset
        self._pending.append(event)

    def maybe_snapshot(self, force: bool = False) -> None:
        """Write the snapshot (if due), then ack every message it covers."""
        if not self._pending or (not force and time.monotonic() - self._last < self.every_s):
            return
        parts = split("detector", self.detector.snapshot())
        for key, blob in parts:
            self.table[key.encode()] = blob
        self.table[_META] = f"{self.applied_offset}:{len(parts)}".encode()
        for event in self._pending:
            event.ack()
        self._pending.clear()
        self._last = time.monotonic()
