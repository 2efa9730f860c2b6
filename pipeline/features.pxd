# Cython declarations for the compiled build of features.py (an "augmenting" .pxd: the .py stays
# plain Python and runs as it is without a compiler). Only locals are typed, so the compiled module
# computes exactly what the source does: doubles, stored as the accumulators' single precision.
import cython

@cython.locals(a=cython.float[:], i=cython.Py_ssize_t, x=cython.double)
cpdef decay_add(acc, double d, list v)

@cython.locals(a=cython.float[:], i=cython.Py_ssize_t, x=cython.double, out=list)
cpdef list decayed(acc, double d, list v)
