# Cython declarations for the compiled build of alerts.py (an "augmenting" .pxd: the .py stays plain
# Python). An open incident is an extension type whose version, times, event count and score are C
# values inside the object (each was a separate int or float object of 24 to 32 bytes); every field
# stays a public attribute with Python semantics: reads give Python ints and floats.

cdef class Incident:
    cdef public object alert_id
    cdef public long long version, first_seen_ms
    cdef public object severity
    cdef public double score
    cdef public long long last_emit_ms, last_hot_ms, events, window_start_ms, window_end_ms
    cdef public object reason_features, reason_numbers, accounts
