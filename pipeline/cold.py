"""Idle accounts held compactly: the cold tier of a shard's account states.

An account idle for ``freeze_idle_ms`` of event time is kept as its changelog form (the JSON of
``AccountState.dump``), deflate-compressed (~0.4 KB, ``_ZDICT``), instead of as ~50 slots, six
sketches and two vectors of Python objects (~3 KB; both from ``scripts/memory_breakdown.py``); its
next event (or an analyst verdict) loads it back exactly as it was. A restore holds idle accounts
frozen as their records come (``hold``). Freezing is invisible to detection: ``load(dump(st))`` is ``st`` (the
raw-address memo aside, which only saves recomputing a prefix the sketch already holds), so outputs
do not depend on what was frozen when.

A blob is the account's last event time (8 bytes, for idle eviction without loading it) followed by
the compressed record. Accounts frozen with pending events (fewer than a forced scoring needs) are
remembered by id, so the shard's checkpoint still lists them and a thaw re-queues them.

>>> from pipeline.account import AccountState
>>> st = AccountState("a", 0, created_ms=0, first_ms=90_000)
>>> cold = ColdAccounts()
>>> cold.freeze(st)
>>> len(cold), "a" in cold, cold.idle_before(90_001)
(1, True, ['a'])
>>> cold.thaw("a").dump() == st.dump(), len(cold), cold.thaw("a")
(True, 0, None)
"""

from __future__ import annotations

import zlib

import orjson

from pipeline.account import AccountState

_HEAD = 8  # bytes of the last event time before the compressed record
# Raw deflate primed with a new account's record, whose structure (brackets, zero counters, hex of
# empty sketches) every record repeats: the median frozen account went from 492 to 442 bytes, with
# freeze and thaw as fast as before (``python scripts/memory_breakdown.py --events 1000000 --accounts
# 100000``). A 4 KB window reaches across the dictionary and a whole record; memLevel 6 keeps
# deflate's state at 48 KB by zlib's formula (2 ** (wbits + 2) + 2 ** (memLevel + 9)).
_ZDICT = orjson.dumps(AccountState("", 0, created_ms=0, first_ms=0).dump())
_WBITS, _MEM_LEVEL = -12, 6


def _compress(record: bytes) -> bytes:
    c = zlib.compressobj(1, zlib.DEFLATED, _WBITS, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, _ZDICT)
    return c.compress(record) + c.flush()


def _decompress(data: memoryview) -> bytes:
    d = zlib.decompressobj(_WBITS, _ZDICT)
    out = d.decompress(data) + d.flush()
    if not d.eof:  # raw deflate has no checksum; a whole stream ends with its final block
        raise ValueError("a frozen record is truncated")
    return out


class ColdAccounts:
    """Frozen accounts of one shard by id (see the module docstring)."""

    __slots__ = ("blobs", "pending")

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.pending: set[str] = set()  # frozen with pending events: still listed by checkpoints

    def __len__(self) -> int:
        return len(self.blobs)

    def __contains__(self, account_id: str) -> bool:
        return account_id in self.blobs

    def freeze(self, st: AccountState) -> None:
        """Hold ``st`` compactly (the caller drops its own references)."""
        self.hold(st.account_id, st.prev_ts, st.pending, orjson.dumps(st.dump()))

    def hold(self, account_id: str, last_ts: int, pending: int, record: bytes) -> None:
        """Hold an account's changelog ``record`` (its last event time and pending events given)."""
        self.blobs[account_id] = last_ts.to_bytes(_HEAD, "little", signed=True) + _compress(record)
        if pending:
            self.pending.add(account_id)

    def thaw(self, account_id: str) -> AccountState | None:
        """The frozen account as it was (no longer held here), or None when it is not frozen."""
        blob = self.blobs.pop(account_id, None)
        if blob is None:
            return None
        self.pending.discard(account_id)
        return AccountState.load(orjson.loads(_decompress(memoryview(blob)[_HEAD:])))

    def record(self, account_id: str) -> bytes | None:
        """The changelog record of a frozen account (None when it is not frozen)."""
        blob = self.blobs.get(account_id)
        return None if blob is None else _decompress(memoryview(blob)[_HEAD:])

    def idle_before(self, horizon: int) -> list[str]:
        """Frozen accounts whose last event is older than ``horizon`` (event time)."""
        return [a for a, b in self.blobs.items() if int.from_bytes(b[:_HEAD], "little", signed=True) < horizon]

    def forget(self, account_id: str) -> None:
        """Drop a frozen account (evicted, or replaced by a restored record)."""
        self.blobs.pop(account_id, None)
        self.pending.discard(account_id)

    def nbytes(self) -> int:
        """Bytes of the held records (the blobs' payload, without the dict and object headers)."""
        return sum(len(b) for b in self.blobs.values())
