# Cython declarations for the compiled build of detection.py (an "augmenting" .pxd: the .py stays
# plain Python). The scoring rule computes in C doubles: the same operations in the same order as the
# source, so the same values (Python floats are C doubles; math.log2/exp call the same libm).
import cython

cdef Py_ssize_t _RATE, _COT, _COT_LO, _TPL, _TREP, _CAT_H, _AGE, _SWEEP, _TOOL, _NEWM, _HOURS, _OUT_IN, _SURGE, _EV6H

cdef double _clip(double x)

@cython.locals(conf=cython.double, recent=cython.double, cot=cython.double, templated=cython.double,
               div=cython.double, h=cython.double, vol=cython.double)
cpdef list evidence(list f, bint has_old_model, double hst=*)

@cython.locals(weights=list, contrib=list, i=cython.Py_ssize_t, z=cython.double, c=cython.double)
cpdef tuple combine(list ev, double fp_bias, double bias=*)

@cython.locals(out=list, used=cython.longlong, best=cython.double, at=cython.Py_ssize_t, i=cython.Py_ssize_t)
cpdef list ranked(list values, Py_ssize_t n)

@cython.locals(out=list, i=cython.Py_ssize_t, m=cython.double, v=cython.double)
cpdef list faded(list means, list x, double a)

@cython.locals(w=cython.float[:], i=cython.Py_ssize_t, m=cython.double, v=cython.double)
cpdef fade_into(acc, Py_ssize_t off, list x, double a)
