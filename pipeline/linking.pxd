# Cython declarations for the compiled build of linking.py (an "augmenting" .pxd: the .py stays plain
# Python). The summary the cluster detector holds per account is an extension type whose times,
# counters, score, activity mask and flag are C values inside the object (each was a separate int or
# float object of 24 to 32 bytes); every field stays a public attribute with Python semantics.

cdef class HeldSummary:
    cdef public object account_id
    cdef public long long ts_ms, created_ms, first_ms
    cdef public object org_id
    cdef public double score, harvest
    cdef public long long events
    cdef public object ip_prefixes, asn_uas, payments, templates
    cdef public long long act_mask, act_slot
    cdef public bint allowlisted
