# Cython declarations for the compiled build of sketches.py (an "augmenting" .pxd: the .py stays
# plain Python). The per-account sketches are extension types whose arrays and counters are C values
# inside the object (a Python array or int is a separate object of 32 bytes and more); typed locals
# only where C computes the source's values: 64-bit unsigned products and shifts reduced mod 2**64
# (what the source's mask does) and sums of doubles in order.
import cython

cdef unsigned long long _MIX1, _MIX2, _MASK64

cpdef unsigned int stable_hash(s) except 0  # never 0: 0 marks an empty slot

cdef class RecentIds:
    cdef public object ring
    cdef public long long pos, since

    @cython.locals(pos=cython.longlong, n=cython.longlong)
    cpdef bint seen_or_add(self, h, long long ts) except -1

cdef class SimhashNovelty:
    cdef unsigned long long cur[32]  # WORDS
    cdef public object old
    cdef public long long fill, nr, near
    cdef public unsigned long long r0, r1, r2, r3

    @cython.locals(h=cython.ulonglong, k1=cython.ulonglong, k2=cython.ulonglong, one=cython.ulonglong,
                   nr=cython.longlong, near=cython.longlong)
    cpdef int observe(self, sh) except -1

cdef class HeavyHitters:
    cdef readonly list keys  # read-only, like k and n below: they bound the loops over the C arrays
    cdef double vals[8]  # MAX_K
    cdef readonly long long k
    cdef public double total

    @cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, kept=cython.Py_ssize_t, c=cython.double)
    cpdef add(self, key)
    @cython.locals(i=cython.Py_ssize_t, top=cython.double)
    cpdef double concentration(self) except? -1

cdef class DistinctSketch:
    cdef unsigned int mins[8]  # MAX_K
    cdef readonly long long n, k
    cdef public long long n_examples
    cdef public tuple examples

    @cython.locals(h=cython.uint, n=cython.longlong, top=cython.longlong, i=cython.longlong, m=cython.uint)
    cpdef add(self, value)
    @cython.locals(n=cython.longlong, i=cython.longlong, largest=cython.uint)
    cpdef double estimate(self) except? -1

@cython.locals(x=cython.ulonglong)
cdef int _popcount(unsigned long long x) noexcept

@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, total=cython.double, c=cython.double, acc=cython.double,
               p=cython.double, r=cython.double)
cpdef double entropy(counts)
