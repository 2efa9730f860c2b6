# Cython declarations for the compiled build of contract.py (an "augmenting" .pxd: the .py stays
# plain Python). The request event is an extension type: the times, counts, latency and flags are C
# values inside the object, read by typed code (counting.pxd) without an attribute lookup; the
# SimHash stays an object (an unsigned 64-bit value, or -1 when absent). Every field stays a public
# attribute with Python semantics; a number outside 64 bits raises OverflowError (the contract's
# limits keep every valid event inside).

cdef class Event:
    cdef public object event_id
    cdef public long long ts_ms
    cdef public object account_id, model
    cdef public long long status, input_tokens, output_tokens
    cdef public object org_id, api_key_id
    cdef public long long account_created_ms
    cdef public object endpoint
    cdef public double latency_ms
    cdef public bint stream
    cdef public object ip
    cdef public long long asn
    cdef public object country, user_agent, payment_fingerprint, simhash, template_hash, category
    cdef public bint cot
    cdef public long long tools
    cdef public object system_hash
