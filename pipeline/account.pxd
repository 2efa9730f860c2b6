# Cython declarations for the compiled build of account.py (an "augmenting" .pxd: the .py stays
# plain Python). The account and its minute bucket become extension types whose integer, float and
# flag fields are C values in the object itself (a Python int slot costs an 8-byte pointer plus a
# 32-byte int object per timestamp); every field stays a public attribute with Python semantics:
# reads give Python ints, floats and bools, a value outside 64 bits raises OverflowError.
# Typed code (counting.pxd, features.pxd) reads and writes the C fields directly, and calls the typed
# sketches' methods (sketches.pxd, topk.pxd) without a Python lookup.
from pipeline.sketches cimport RecentIds, SimhashNovelty
from pipeline.topk cimport DistinctSketch, HeavyHitters

cdef class MinuteBucket:
    cdef public object account_id
    cdef public long long minute_ms
    cdef public object v  # array("d")
    cdef public tuple models
    cdef public bint dirty

cdef class AccountState:
    cdef public object account_id
    cdef public long long last_offset, created_ms, first_ms, prev_ts
    cdef public object org_id
    cdef public MinuteBucket bucket
    cdef public RecentIds ids
    cdef public SimhashNovelty nov
    cdef public HeavyHitters tpl
    cdef public DistinctSketch ips, asn_ua, pays
    cdef public object last_model
    cdef public object last_ip, last_ua
    cdef public long long last_asn
    cdef public object last_pay
    cdef public object acc  # array("f"): short, long, own
    cdef public long long fold_ms, hours, act_mask, dom_rot_ms
    cdef public long long pending, next_score_ms, force_ms, last_score_ms
    cdef public double last_score
    cdef public long long own_n
    cdef public double fp_bias
    cdef public object incident
    cdef public long long dups, late, events
    cdef public long long tpl_decay_ms
    cdef public object t1, t2
    cdef public long long row_ms
    # 32-bit where the value is bounded (a partition; hours and 5-minute slots since 1970 up to the
    # contract's last timestamp, 2100; category masks; the CUSUM, at most 200), next to the flags:
    # 48 bytes where 64-bit fields and padded flags took 80
    cdef public int shard, hour_last, act_slot, dom_mask, dom_old, cusum
    cdef public bint model_new, confirmed, allowlisted, dirty, has_old_model
