# Cython declarations for the compiled build of features.py (an "augmenting" .pxd: the .py stays
# plain Python and runs as it is without a compiler). Locals are typed only where C computes exactly
# what the source does: doubles, stored as the accumulators' single precision; 64-bit integers kept
# within range (``fold`` reads and writes the account's C fields, account.pxd).
import cython
from pipeline.account cimport AccountState, MinuteBucket

@cython.locals(a=cython.float[:], i=cython.Py_ssize_t, x=cython.double)
cpdef decay_add(acc, Py_ssize_t off, double d, double[:] v)

@cython.locals(shift=cython.longlong)
cpdef long long hours_active(AccountState st, long long now) except? -1

@cython.locals(age=cython.longlong)
cpdef double _window(AccountState st, long long now, long long tau) except? -1

@cython.locals(a=cython.float[:], v=cython.double[:], dt=cython.longlong, ds=cython.double, dl=cython.double,
               s_ev=cython.double, l_ev=cython.double, ev_s=cython.double, ev_l=cython.double, win_s=cython.double,
               rate_s=cython.double, rate_l=cython.double, dom=cython.Py_ssize_t, top=cython.double,
               i=cython.Py_ssize_t, c=cython.double, gaps=cython.double, mean=cython.double, var=cython.double,
               cv=cython.double, l_cot=cython.double, p=cython.double)
cpdef list feature_vector(AccountState st, long long now)

@cython.locals(b=MinuteBucket, v=cython.double[:], m=cython.longlong, dt=cython.longlong, hour=cython.longlong,
               d=cython.longlong, slot=cython.longlong, k=cython.longlong)
cpdef fold(AccountState st, long long new_minute_ms)
