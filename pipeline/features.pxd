# Cython declarations for the compiled build of features.py (an "augmenting" .pxd: the .py stays
# plain Python and runs as it is without a compiler). Locals are typed only where C computes exactly
# what the source does: doubles, stored as the accumulators' single precision; 64-bit integers kept
# within range (``fold`` reads and writes the account's C fields, account.pxd).
import cython
from pipeline.account cimport AccountState, MinuteBucket

@cython.locals(a=cython.float[:], i=cython.Py_ssize_t, x=cython.double)
cpdef decay_add(acc, Py_ssize_t off, double d, double[:] v)

@cython.locals(a=cython.float[:], i=cython.Py_ssize_t, x=cython.double, out=list)
cpdef list decayed(acc, Py_ssize_t off, double d, double[:] v)

@cython.locals(b=MinuteBucket, v=cython.double[:], m=cython.longlong, dt=cython.longlong, hour=cython.longlong,
               d=cython.longlong, slot=cython.longlong, k=cython.longlong)
cpdef fold(AccountState st, long long new_minute_ms)
