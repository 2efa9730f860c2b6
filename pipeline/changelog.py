"""The engine's partition states and their changelog form: what a checkpoint writes for a
partition and how its state comes back (``Engine`` inherits this; ``processor`` drives it).

A checkpoint starts with the tombstones of evicted accounts and the shard record as they are then;
the accounts changed since the previous checkpoint follow, dumped in chunks between batches, each as
it is when dumped (a later state covers later offsets too). Records restore in any order.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pipeline.detection import DetectionConfig
from pipeline.shard import Shard
from pipeline.verdicts import Verdicts


class ShardStates:
    """Partition states by shard number (Kafka partition), with their changelog form."""

    config: DetectionConfig
    verdicts: Verdicts
    _shards: dict[int, Shard]

    @property
    def shards(self) -> Mapping[int, Shard]:
        """The partitions' states by shard number, read-only (diagnostics and tests look inside)."""
        return MappingProxyType(self._shards)

    def _new_shard(self, shard: int) -> Shard:
        sh = self._shards[shard] = Shard(self.config)
        return sh

    def dirty_snapshots(self, shard: int) -> list[tuple[str, bytes]]:
        """(account id, state) for accounts changed since the last call, plus the shard record (last)."""
        head = self.begin_checkpoint(shard)
        sh = self._shards.get(shard)
        accounts = self.checkpoint_accounts(shard, len(sh.snapping)) if sh is not None else []
        return head[:-1] + accounts + head[-1:]

    def begin_checkpoint(self, shard: int) -> list[tuple[str, bytes]]:
        """Start a checkpoint: tombstones and the shard record as they are now; the accounts changed
        since the last checkpoint are queued for ``checkpoint_accounts``."""
        sh = self._shards.get(shard)
        return sh.begin_checkpoint() if sh is not None else []

    def checkpoint_accounts(self, shard: int, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` queued accounts of ``shard``, each as it is now (``Shard.checkpoint_accounts``)."""
        sh = self._shards.get(shard)
        return sh.checkpoint_accounts(limit) if sh is not None else []

    def restore(self, shard: int, account_id: str, blob: bytes) -> None:
        """Load one changelog record (account state, tombstone or the shard record)."""
        sh = self._shards.get(shard) or self._new_shard(shard)
        st = sh.restore(account_id, blob)
        if st is not None:
            self.verdicts.apply(st)
            if st.incident is not None:
                self.verdicts.remember_alert(st.incident.alert_id, account_id)

    def discard_changes(self) -> None:
        """Forget which accounts changed (a replay without a changelog: nothing to checkpoint)."""
        for sh in self._shards.values():
            accounts = sh.accounts
            for a in sh.dirty:
                st = accounts.get(a)
                if st is not None:
                    st.dirty = False
            sh.dirty = []

    def drop_shard(self, shard: int) -> None:
        """Partition revoked: forget its state (the changelog has it)."""
        self._shards.pop(shard, None)

    def clock(self, shard: int) -> int | None:
        """The shard's event-time clock (the latest event time or watermark); None for an unknown shard."""
        sh = self._shards.get(shard)
        return sh.clock if sh is not None else None

    def accounts_tracked(self) -> int:
        """Accounts held in memory (frozen ones included), over all shards."""
        return sum(len(sh.accounts) + len(sh.cold) for sh in self._shards.values())

    def accounts_frozen(self) -> int:
        """Accounts held frozen (compressed, ``cold``), over all shards."""
        return sum(len(sh.cold) for sh in self._shards.values())
