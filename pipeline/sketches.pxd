# Cython declarations for the compiled build of sketches.py (an "augmenting" .pxd: the .py stays
# plain Python). Typed locals only where C arithmetic gives the same values as Python's: 64-bit
# unsigned products reduced mod 2**64 (what the source's mask does) and sums of doubles in order.
import cython

cdef unsigned long long _MIX1, _MIX2, _MASK64

cdef class RecentIds:
    cdef public object ring
    cdef public long long pos, since

cdef class SimhashNovelty:
    cdef public bytearray cur, old
    cdef public object fill, r0, r1, r2, r3, near

    @cython.locals(h=cython.ulonglong, k1=cython.ulonglong, k2=cython.ulonglong, cur=bytearray, old=bytearray)
    cpdef int observe(self, sh)

@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, total=cython.double, c=cython.double, acc=cython.double,
               p=cython.double, r=cython.double)
cpdef double entropy(counts)
