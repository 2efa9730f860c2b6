# Cython declarations for the compiled build of sketches.py (an "augmenting" .pxd: the .py stays
# plain Python). The event-id ring and the novelty filter are extension types whose arrays and
# counters are C values inside the object (a Python array or int is a separate object of 32 bytes
# and more); typed locals only where C computes the source's values: 64-bit unsigned products and shifts reduced mod 2**64
# (what the source's mask does) and sums of doubles in order.
import cython

cdef unsigned long long _MIX1, _MIX2, _MASK64, _M1, _M2, _M4, _H01

cpdef unsigned int stable_hash(s) except 0  # never 0: 0 marks an empty slot

cdef class RecentIds:
    cdef unsigned int ids[16]  # SMALL: the ring inside the object until it grows past it
    cdef readonly object grown
    cdef readonly long long n, pos  # read-only: they index the C array (``_restore`` checks a record's)
    cdef public long long since

    @cython.locals(pos=cython.longlong, n=cython.longlong, i=cython.Py_ssize_t)
    cpdef bint seen_or_add(self, unsigned int h, long long ts) except -1

cdef class SimhashNovelty:
    cdef unsigned long long cur[32]  # WORDS
    cdef public object old
    cdef public long long fill, nr, near
    cdef public unsigned long long r0, r1, r2, r3

    @cython.locals(h=cython.ulonglong, k1=cython.ulonglong, k2=cython.ulonglong, one=cython.ulonglong,
                   nr=cython.longlong, near=cython.longlong)
    cpdef int observe(self, sh) except -1

@cython.locals(x=cython.ulonglong)
cdef int _popcount(unsigned long long x) noexcept
