# Cython declarations for the compiled build of topk.py (an "augmenting" .pxd: the .py stays plain
# Python). Both top-k sketches are extension types whose counts and hashes are C arrays inside the
# object, sized MAX_K; the sizes that bound the loops over them are read-only. ``entropy`` sums C
# doubles in order, as the source does.
import cython

from pipeline.sketches cimport stable_hash

cdef class HeavyHitters:
    cdef readonly tuple keys  # read-only, like k and n below: they bound the loops over the C arrays
    cdef double vals[8]  # MAX_K
    cdef readonly long long k
    cdef public double total

    @cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, kept=cython.Py_ssize_t, c=cython.double, keys=tuple, left=list)
    cpdef add(self, key)
    @cython.locals(i=cython.Py_ssize_t, top=cython.double)
    cpdef double concentration(self) except? -1
    @cython.locals(taken=cython.double, i=cython.Py_ssize_t)
    cpdef double coverage(self, long long n=*) except? -1
    cpdef list top(self, long long n=*)
    @cython.locals(keys=tuple, m=cython.Py_ssize_t, out=list, used=cython.longlong, at=cython.Py_ssize_t,
                   i=cython.Py_ssize_t)
    cdef list _order(self, long long n)

cdef class DistinctSketch:
    cdef unsigned int mins[8]  # MAX_K
    cdef readonly long long n, k
    cdef public long long n_examples
    cdef public tuple examples

    @cython.locals(h=cython.uint, n=cython.longlong, top=cython.longlong, i=cython.longlong, m=cython.uint)
    cpdef add(self, value)
    @cython.locals(n=cython.longlong, i=cython.longlong, largest=cython.uint)
    cpdef double estimate(self) except? -1

@cython.locals(n=cython.Py_ssize_t, i=cython.Py_ssize_t, total=cython.double, c=cython.double, acc=cython.double,
               p=cython.double, r=cython.double)
cpdef double entropy(counts)
