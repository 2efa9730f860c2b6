# Cython declarations for the compiled build of counting.py (an "augmenting" .pxd: the .py stays plain
# Python). ``count`` reads and writes the account's and its bucket's C fields (account.pxd) and reads
# the event's (contract.pxd) directly;
# integer locals are C 64-bit with Python's semantics (floor modulo, OverflowError past 64 bits).
import cython
from pipeline.account cimport AccountState, MinuteBucket
from pipeline.contract cimport Event
from pipeline.sketches cimport stable_hash
from pipeline.topk cimport HeavyHitters

@cython.locals(b=MinuteBucket, v=cython.double[:], tpl=HeavyHitters, ts=cython.longlong, minute=cython.longlong,
               status=cython.longlong, c=cython.longlong, gap=cython.longlong, n=cython.longlong)
cpdef int count(sh, AccountState st, Event event, long long offset, long long lateness, long long min_events,
                long long force_min) except -1
