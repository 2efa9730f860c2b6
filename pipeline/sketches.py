"""Small sketches for per-account state: bounded memory, O(1) updates, no sets.

Every sketch serialises to plain lists (``dump``/``load``) so account state can
go to the changelog topic and come back bit-identical.

>>> r = RecentIds(8)
>>> r.seen_or_add(stable_hash("e1"), 0), r.seen_or_add(stable_hash("e1"), 1_000)
(False, True)
>>> n = SimhashNovelty()
>>> n.observe(0xFFFF0000FFFF0000), n.observe(0xFFFF0000FFFF0001), n.observe(0x0123456789ABCDEF)
(0, 1, 0)
"""

from __future__ import annotations

import math
import sys
from array import array
from sys import intern
from zlib import crc32

_MIX1 = 0x9E3779B97F4A7C15  # SimhashNovelty's two multiplicative hashes (64-bit)
_MIX2 = 0xC2B2AE3D27D4EB4F
_MASK64 = 0xFFFFFFFFFFFFFFFF


def pack(a: array) -> str:  # type: ignore[type-arg]
    """An array as hex of its little-endian bytes: exact, and one C call instead of a JSON number each.

    >>> unpack("f", pack(array("f", [0.5, 2.0]))).tolist()
    [0.5, 2.0]
    """
    if sys.byteorder != "little":
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes().hex()


def unpack(typecode: str, value: str | list[float]) -> array:  # type: ignore[type-arg]
    """Inverse of ``pack``; also takes the plain list of older snapshots."""
    if not isinstance(value, str):
        return array(typecode, value)
    a = array(typecode, bytes.fromhex(value))
    if sys.byteorder != "little":
        a.byteswap()
    return a


def stable_hash(s: str) -> int:
    """A process-independent 32-bit hash, never 0 (0 marks an empty slot).

    >>> stable_hash("abc") == stable_hash("abc") != 0
    True
    """
    return crc32(s.encode()) or 1


class RecentIds:
    """Ring of recent event-id hashes: a gateway retry is recognised and counted once.

    It holds the last ``size`` ids, and doubles (up to ``MAX``) whenever its ids span less than
    ``GROW_MS`` of event time, so a fast account's retries seconds later are still caught.

    >>> r = RecentIds(4, since=0)
    >>> [r.seen_or_add(h, 100 * h) for h in (1, 2, 3, 4, 5)], len(r.ring), r.seen_or_add(1, 600)
    ([False, False, False, False, False], 8, True)
    """

    __slots__ = ("ring", "pos", "since")

    GROW_MS = 10_000
    MAX = 64

    def __init__(self, size: int = 16, since: int = 0) -> None:
        self.ring = array("I", bytes(4 * size))
        self.pos = 0
        self.since = since  # event time the ring's oldest generation began (at the last wrap)

    def seen_or_add(self, h: int, ts: int) -> bool:
        """True when ``h`` is among the recent ids; otherwise remember it (at event time ``ts``)."""
        ring = self.ring
        if h in ring:
            return True
        pos = self.pos
        ring[pos] = h
        pos += 1
        n = len(ring)
        if pos == n:
            if ts - self.since < self.GROW_MS and n < self.MAX:
                grown = array("I", bytes(8 * n))  # the next ids go to the new half; ``since`` stays
                grown[:n] = ring
                self.ring = grown
            else:
                pos = 0
                self.since = ts
        self.pos = pos
        return False

    def dump(self) -> list[object]:
        return [pack(self.ring), self.pos, self.since]

    @classmethod
    def load(cls, d: list) -> RecentIds:  # type: ignore[type-arg]
        r = cls.__new__(cls)
        r.ring = unpack("I", d[0])
        r.pos = d[1]
        r.since = d[2] if len(d) > 2 else 0  # records from before the ring could grow
        return r


class SimhashNovelty:
    """Is a prompt new for this account? A 2-generation Bloom filter of exact SimHash values
    plus the Hamming distance to the last four prompts (near-duplicates: distance <= ``near``).

    ``observe`` returns 0 = novel, 1 = near-duplicate of a recent prompt, 2 = exact repeat.
    Memory: 2 x 256 bytes + 4 ints, whatever the traffic.
    """

    __slots__ = ("cur", "old", "fill", "r0", "r1", "r2", "r3", "near")

    BITS = 2048
    ROTATE = 160  # inserts per generation: keeps the false-positive rate near 1%

    def __init__(self, near: int = 3) -> None:
        self.cur = bytearray(self.BITS // 8)
        self.old = bytearray()  # allocated at the first rotation
        self.fill = 0
        self.r0 = self.r1 = self.r2 = self.r3 = -1
        self.near = near

    def observe(self, sh: int) -> int:
        h = sh  # unsigned 64-bit in the compiled build (sketches.pxd): the products wrap as the mask does
        k1 = ((h * _MIX1) & _MASK64) >> 53  # all 64 bits mixed into 11
        k2 = ((h * _MIX2) & _MASK64) >> 53
        cur = self.cur
        old = self.old
        if (cur[k1 >> 3] >> (k1 & 7)) & (cur[k2 >> 3] >> (k2 & 7)) & 1 or (
            old and (old[k1 >> 3] >> (k1 & 7)) & (old[k2 >> 3] >> (k2 & 7)) & 1
        ):
            kind = 2
        else:
            near = self.near
            kind = (
                1
                if (sh ^ self.r0).bit_count() <= near
                or (sh ^ self.r1).bit_count() <= near
                or (sh ^ self.r2).bit_count() <= near
                or (sh ^ self.r3).bit_count() <= near
                else 0
            )
            cur[k1 >> 3] |= 1 << (k1 & 7)
            cur[k2 >> 3] |= 1 << (k2 & 7)
            self.fill += 1
            if self.fill >= self.ROTATE:
                self.old = cur
                self.cur = bytearray(self.BITS // 8)
                self.fill = 0
        self.r3 = self.r2
        self.r2 = self.r1
        self.r1 = self.r0
        self.r0 = sh
        return kind

    def dump(self) -> list[object]:
        return [self.cur.hex(), self.old.hex(), self.fill, self.r0, self.r1, self.r2, self.r3, self.near]

    @classmethod
    def load(cls, d: list) -> SimhashNovelty:  # type: ignore[type-arg]
        n = cls(d[7])
        n.cur, n.old = bytearray.fromhex(d[0]), bytearray.fromhex(d[1])
        n.fill, n.r0, n.r1, n.r2, n.r3 = d[2], d[3], d[4], d[5], d[6]
        return n


class HeavyHitters:
    """Misra-Gries top-k of strings (template hashes): concentration = top count / total.

    >>> h = HeavyHitters(2)
    >>> for t in "aaab": h.add(t)
    >>> h.top(1), h.concentration()
    (['a'], 0.75)
    """

    __slots__ = ("counts", "k", "total")

    def __init__(self, k: int = 6) -> None:
        self.counts: dict[str, float] = {}
        self.k = k
        self.total = 0.0

    def add(self, key: str) -> None:
        self.total += 1
        c = self.counts
        if key in c:
            c[key] += 1
        elif len(c) < self.k:
            c[key] = 1
        else:  # decrement all; drop zeros
            for k2 in list(c):
                c[k2] -= 1
                if c[k2] <= 0:
                    del c[k2]

    def decay(self, factor: float = 0.5) -> None:
        """Age the counts so concentration follows recent traffic."""
        self.total *= factor
        for k in list(self.counts):
            self.counts[k] *= factor

    def top(self, n: int = 3) -> list[str]:
        return [k for k, _ in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

    def concentration(self) -> float:
        return max(self.counts.values(), default=0.0) / self.total if self.total else 0.0

    def coverage(self, n: int = 3) -> float:
        """Share of all observations (``total`` also counts un-keyed ones) in the top ``n`` keys."""
        return sum(sorted(self.counts.values(), reverse=True)[:n]) / self.total if self.total else 0.0

    def dump(self) -> list[object]:
        return [self.counts, self.k, self.total]

    @classmethod
    def load(cls, d: list) -> HeavyHitters:  # type: ignore[type-arg]
        h = cls(d[1])
        h.counts, h.total = {intern(k): c for k, c in d[0].items()}, d[2]
        return h


class DistinctSketch:
    """Distinct count: exact below ``k`` values, K-minimum-values estimate above; keeps a few examples.

    >>> d = DistinctSketch()
    >>> for v in ["a", "b", "a", "c"]: d.add(v)
    >>> d.estimate(), d.examples
    (3.0, ['a', 'b', 'c'])
    """

    __slots__ = ("mins", "examples", "k", "n_examples")

    def __init__(self, k: int = 8, n_examples: int = 4) -> None:
        self.mins = array("I")
        self.examples: list[str] = []
        self.k = k
        self.n_examples = n_examples

    def add(self, value: str) -> None:
        h = stable_hash(value)
        m = self.mins
        if h in m:
            return
        if len(self.examples) < self.n_examples:
            self.examples.append(value)
        if len(m) < self.k:
            m.append(h)
        elif h < max(m):
            m[m.index(max(m))] = h

    def estimate(self) -> float:
        m = self.mins
        if len(m) < self.k:
            return float(len(m))
        return (self.k - 1) / (max(m) / 2**32)

    def dump(self) -> list[object]:
        return [pack(self.mins), self.examples, self.k, self.n_examples]

    @classmethod
    def load(cls, d: list) -> DistinctSketch:  # type: ignore[type-arg]
        s = cls(d[2], d[3])
        s.mins, s.examples = unpack("I", d[0]), [intern(x) for x in d[1]]
        return s


def entropy(counts: list[float] | array) -> float:  # type: ignore[type-arg]
    """Shannon entropy normalised to [0, 1] by log(len(counts)).

    >>> round(entropy([1, 1, 0, 0]), 3), entropy([5, 0, 0, 0])
    (0.5, 0.0)
    """
    n = len(counts)
    total = 0.0  # C doubles in the compiled build (sketches.pxd), summed in order as sum() does
    for i in range(n):
        c = counts[i]
        total += c
    if total <= 0 or n < 2:
        return 0.0
    acc = 0.0
    for i in range(n):
        c = counts[i]
        if c > 0:
            p = c / total
            acc += p * math.log(p)
    r = -acc / math.log(n)
    return r if r > 0.0 else 0.0
