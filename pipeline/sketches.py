"""Small sketches for per-account state: bounded memory, O(1) updates, no sets. Here the event-id
ring (``RecentIds``) and the prompt-novelty filter (``SimhashNovelty``); the top-k sketches of
templates and distinct values are in ``topk``.

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

import sys
from array import array
from zlib import crc32

try:
    import cython  # compile-time class directives (setup.py); uncompiled, its decorators do nothing
except ImportError:  # no Cython on this machine: the module runs uncompiled
    from pipeline.compiled import NoCython as cython

_MIX1 = 0x9E3779B97F4A7C15  # SimhashNovelty's two multiplicative hashes (64-bit)
_MIX2 = 0xC2B2AE3D27D4EB4F
_MASK64 = 0xFFFFFFFFFFFFFFFF
# ``_popcount``'s masks and multiplier: typed globals in the compiled build (sketches.pxd), where a
# 64-bit literal would be a Python int and every step of the count Python arithmetic.
_M1, _M2, _M4, _H01 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101


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
    """Inverse of ``pack``; also takes the plain list of older snapshots. The array is allocated at
    its length (``zeros``).

    >>> sys.getsizeof(unpack("I", pack(zeros("I", 16)))) == sys.getsizeof(zeros("I", 16))
    True
    """
    if not isinstance(value, str):
        return array(typecode, value)
    a = array(typecode, bytes.fromhex(value))
    if sys.byteorder != "little":
        a.byteswap()
    return array(typecode, a)  # a copy is allocated at its length; one made from bytes is not


def zeros(typecode: str, n: int) -> array:  # type: ignore[type-arg]
    """``n`` zeros in an array allocated at its length: ``array(typecode, bytes(...))`` keeps room to
    grow (16 bytes more for 16 ids, 24 for an account's 52 accumulators), held by every account.

    >>> sys.getsizeof(zeros("I", 16)) < sys.getsizeof(array("I", bytes(64)))
    True
    """
    return array(typecode, [0]) * n


def stable_hash(s: str) -> int:
    """A process-independent 32-bit hash, never 0 (0 marks an empty slot).

    >>> stable_hash("abc") == stable_hash("abc") != 0
    True
    """
    return crc32(s.encode()) or 1


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class RecentIds:
    """Ring of recent event-id hashes: a gateway retry is recognised and counted once.

    It holds the last ``n`` ids, and doubles (up to ``MAX``) whenever its ids span less than
    ``GROW_MS`` of event time, so a fast account's retries seconds later are still caught. Up to
    ``SMALL`` ids sit inside the object (a C array in the compiled build, sketches.pxd), more in an
    array of their own (``grown``).

    >>> r = RecentIds(4, since=0)
    >>> [r.seen_or_add(h, 100 * h) for h in (1, 2, 3, 4, 5)], r.n, r.seen_or_add(1, 600)
    ([False, False, False, False, False], 8, True)
    """

    __slots__ = ("ids", "grown", "n", "pos", "since")

    SMALL = 16
    GROW_MS = 10_000
    MAX = 64

    def __init__(self, size: int = 16, since: int = 0) -> None:
        if not 1 <= size <= self.SMALL:
            raise ValueError(f"RecentIds: size {size} is outside 1..{self.SMALL}")
        self.ids = zeros("I", self.SMALL)  # the first n are the ring while it has not grown past SMALL
        self.grown: array | None = None  # type: ignore[type-arg]
        self.n = size
        self.pos = 0
        self.since = since  # event time the ring's oldest generation began (at the last wrap)

    def seen_or_add(self, h: int, ts: int) -> bool:
        """True when ``h`` is among the recent ids; otherwise remember it (at event time ``ts``)."""
        n = self.n
        grown = self.grown
        if grown is None:
            for i in range(n):
                if self.ids[i] == h:
                    return True
        elif h in grown:
            return True
        pos = self.pos
        if grown is None:
            self.ids[pos] = h
        else:
            grown[pos] = h
        pos += 1
        if pos == n:
            if ts - self.since < self.GROW_MS and n < self.MAX:
                if 2 * n > self.SMALL:  # the next ids go to the new half; ``since`` stays
                    bigger = zeros("I", 2 * n)
                    for i in range(n):
                        if grown is None:
                            bigger[i] = self.ids[i]
                        else:
                            bigger[i] = grown[i]
                    self.grown = bigger
                self.n = 2 * n
            else:
                pos = 0
                self.since = ts
        self.pos = pos
        return False

    @property
    def ring(self) -> array:  # type: ignore[type-arg]
        """The ``n`` ids, oldest generation first after ``pos`` (a copy)."""
        if self.grown is not None:
            return array("I", self.grown)
        return array("I", [self.ids[i] for i in range(self.n)])

    def dump(self) -> list[object]:
        return [pack(self.ring), self.pos, self.since]

    @classmethod
    def load(cls, d: list) -> RecentIds:  # type: ignore[type-arg]
        ring = unpack("I", d[0])
        r = cls(min(len(ring), cls.SMALL), d[2] if len(d) > 2 else 0)  # 0: from before the ring could grow
        r._restore(ring, d[1])
        return r

    def _restore(self, ring: array, pos: int) -> None:  # type: ignore[type-arg]
        n = len(ring)
        if not 0 <= pos < n <= self.MAX:
            raise ValueError(f"RecentIds: position {pos} in a ring of {n} (at most {self.MAX})")
        if n > self.SMALL:
            self.grown = ring
        else:
            for i in range(n):
                self.ids[i] = ring[i]
        self.n = n
        self.pos = pos


@cython.no_gc  # no reference cycles: no GC header, never walked by collections
@cython.cclass
class SimhashNovelty:
    """Is a prompt new for this account? A 2-generation Bloom filter of exact SimHash values
    plus the Hamming distance to the last four prompts (near-duplicates: distance <= ``near``).

    ``observe`` returns 0 = novel, 1 = near-duplicate of a recent prompt, 2 = exact repeat.
    Memory: 2 x 256 bytes + 4 hashes, whatever the traffic; in the compiled build (sketches.pxd) the
    current generation and the hashes are C values inside the object, and the old generation is
    allocated at the first rotation.

    >>> n = SimhashNovelty()
    >>> n.observe(2**64 - 1), n.observe(2**64 - 2), n.observe(2**64 - 1), n.dump()[3:8]
    (0, 1, 2, [18446744073709551615, 18446744073709551614, 18446744073709551615, -1, 3])
    """

    __slots__ = ("cur", "old", "fill", "r0", "r1", "r2", "r3", "nr", "near")

    BITS = 2048
    WORDS = BITS // 64
    ROTATE = 160  # inserts per generation: keeps the false-positive rate near 1%

    def __init__(self, near: int = 3) -> None:
        self.cur = zeros("Q", self.WORDS)  # bit k: bit k % 64 of word k // 64
        self.old: array | None = None  # type: ignore[type-arg]  # the previous generation, from the first rotation
        self.fill = 0
        self.r0 = self.r1 = self.r2 = self.r3 = 0  # the last four prompts' hashes, r0 the latest
        self.nr = 0  # how many of r0..r3 hold a prompt
        self.near = near

    def observe(self, sh: int) -> int:
        h = sh  # unsigned 64-bit in the compiled build (sketches.pxd): the products wrap as the mask does
        k1 = ((h * _MIX1) & _MASK64) >> 53  # all 64 bits mixed into 11
        k2 = ((h * _MIX2) & _MASK64) >> 53
        old = self.old
        if (self.cur[k1 >> 6] >> (k1 & 63)) & (self.cur[k2 >> 6] >> (k2 & 63)) & 1 or (
            old is not None and (old[k1 >> 6] >> (k1 & 63)) & (old[k2 >> 6] >> (k2 & 63)) & 1
        ):
            kind = 2
        else:
            near = self.near
            nr = self.nr
            kind = (
                1
                if (nr > 0 and _popcount(h ^ self.r0) <= near)
                or (nr > 1 and _popcount(h ^ self.r1) <= near)
                or (nr > 2 and _popcount(h ^ self.r2) <= near)
                or (nr > 3 and _popcount(h ^ self.r3) <= near)
                else 0
            )
            one = 1  # unsigned 64-bit in the compiled build: bit 63 is set without a sign
            self.cur[k1 >> 6] |= one << (k1 & 63)
            self.cur[k2 >> 6] |= one << (k2 & 63)
            self.fill += 1
            if self.fill >= self.ROTATE:
                self.old = array("Q", self.cur)
                self.cur = zeros("Q", self.WORDS)
                self.fill = 0
        self.r3 = self.r2
        self.r2 = self.r1
        self.r1 = self.r0
        self.r0 = h
        if self.nr < 4:
            self.nr += 1
        return kind

    def dump(self) -> list[object]:
        """``[cur, old, fill, r0, r1, r2, r3, near]``: the generations as hex of their little-endian
        bytes (bit k in byte k // 8), an empty old generation as "" and an empty hash slot as -1."""
        nr = self.nr
        rs = [r if i < nr else -1 for i, r in enumerate((self.r0, self.r1, self.r2, self.r3))]
        old = self.old
        return [pack(array("Q", self.cur)), pack(old) if old is not None else "", self.fill, *rs, self.near]

    @classmethod
    def load(cls, d: list) -> SimhashNovelty:  # type: ignore[type-arg]
        n = cls(d[7])
        n._restore(unpack("Q", d[0]), unpack("Q", d[1]) if d[1] else None, d[2], d[3:7])
        return n

    def _restore(self, cur: array, old: array | None, fill: int, rs: list[int]) -> None:  # type: ignore[type-arg]
        self.cur, self.old, self.fill = cur, old, fill
        nr = 0
        while nr < 4 and rs[nr] != -1:  # the slots fill from r0: the first -1 ends them
            nr += 1
        self.nr = nr
        self.r0, self.r1, self.r2, self.r3 = (r if r != -1 else 0 for r in rs)


def _popcount(x: int) -> int:
    """Set bits of an unsigned 64-bit ``x``: ``x.bit_count()`` in C arithmetic in the compiled build
    (a C function there, no method call); ``tests/test_compiled.py`` compares the two."""
    x = x - ((x >> 1) & _M1)
    x = (x & _M2) + ((x >> 2) & _M2)
    x = (x + (x >> 4)) & _M4
    return ((x * _H01) & _MASK64) >> 56
