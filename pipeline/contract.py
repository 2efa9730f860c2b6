"""Wire contract v1 (``shared/contract/events-v1.md``): the request event as the core sees it
(``Event``), the contract's limits and categories, and the dead-letter record of a message that
breaks it. Decoding and validation: ``validation.decode_event``; the alert message: ``alerts.Alert``.
"""

from __future__ import annotations

import orjson

try:
    import cython  # compile-time class directives (setup.py); uncompiled, its decorators do nothing
except ImportError:  # no Cython on this machine: the module runs uncompiled
    from pipeline.compiled import NoCython as cython

from pipeline.errors import InvalidEvent

MAX_MESSAGE_BYTES = 64 * 1024
MAX_ID_CHARS = 128
MAX_UA_CHARS = 512
# Event time must fall in [2015-01-01, 2100-01-01): anything else is a broken clock or an attack.
MIN_TS_MS = 1_420_070_400_000
MAX_TS_MS = 4_102_444_800_000


def future_horizon(now_ms: int, max_skew_ms: int) -> int:
    """The latest event time accepted at wall-clock ``now_ms``: later events are dead-lettered by the
    worker and set aside by ``evaluate`` (``max_skew_ms`` 0: the contract's own bound only).

    >>> future_horizon(1_000, 300_000), future_horizon(1_000, 0) == MAX_TS_MS
    (301000, True)
    """
    return now_ms + max_skew_ms if max_skew_ms else MAX_TS_MS

CATEGORIES = (
    "chat", "coding", "reasoning", "math", "agentic",
    "tool_use", "vision", "writing", "safety_probe", "other",
)  # fmt: skip
CATEGORY_INDEX = {c: i for i, c in enumerate(CATEGORIES)}

# Machine-readable dead-letter reasons (a closed set; the JSON Schema test covers each).
REASONS = (
    "too_large", "invalid_utf8", "not_json", "not_object", "missing_field",
    "wrong_type", "out_of_range", "bad_format",
)  # fmt: skip


# The fields of ``Event`` in order (its positional arguments, ``repr`` and equality).
EVENT_FIELDS = (
    "event_id", "ts_ms", "account_id", "model", "status", "input_tokens", "output_tokens", "org_id",
    "api_key_id", "account_created_ms", "endpoint", "latency_ms", "stream", "ip", "asn", "country",
    "user_agent", "payment_fingerprint", "simhash", "template_hash", "category", "cot", "tools",
    "system_hash",
)  # fmt: skip


@cython.no_gc  # strings and numbers only: no reference cycles, no GC header
@cython.cclass
class Event:
    """One validated API request event (no prompt text: only the contract's hashes).

    Compiled, an extension type (``contract.pxd``): its times, counts and flags are C fields that
    typed code (``counting.count``) reads without a lookup, and building one (once per event) runs
    no interpreted ``__init__``. Equal when every field is equal, as the dataclass it replaced.

    >>> ev = Event("e1", 60_000, "a", "m", 200, 10, 20, cot=True)
    >>> ev.ts_ms, ev.cot, ev.simhash, ev == Event("e1", 60_000, "a", "m", 200, 10, 20, cot=True)
    (60000, True, -1, True)
    >>> repr(ev)[:49]
    "Event(event_id='e1', ts_ms=60000, account_id='a',"
    """

    __slots__ = EVENT_FIELDS

    def __init__(self, event_id: str, ts_ms: int, account_id: str, model: str, status: int,
                 input_tokens: int, output_tokens: int, org_id: str = "", api_key_id: str = "",
                 account_created_ms: int = 0, endpoint: str = "", latency_ms: float = 0.0,
                 stream: bool = False, ip: str = "", asn: int = -1, country: str = "", user_agent: str = "",
                 payment_fingerprint: str = "", simhash: int = -1, template_hash: str = "",
                 category: str = "", cot: bool = False, tools: int = 0, system_hash: str = "") -> None:  # fmt: skip
        self.event_id, self.ts_ms, self.account_id, self.model = event_id, ts_ms, account_id, model
        self.status, self.input_tokens, self.output_tokens = status, input_tokens, output_tokens
        self.org_id, self.api_key_id, self.account_created_ms = org_id, api_key_id, account_created_ms
        self.endpoint, self.latency_ms, self.stream, self.ip, self.asn = endpoint, latency_ms, stream, ip, asn
        self.country, self.user_agent, self.payment_fingerprint = country, user_agent, payment_fingerprint
        self.simhash, self.template_hash, self.category = simhash, template_hash, category
        self.cot, self.tools, self.system_hash = cot, tools, system_hash

    def values(self) -> tuple[object, ...]:
        """The fields' values in ``EVENT_FIELDS`` order."""
        return tuple([getattr(self, name) for name in EVENT_FIELDS])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.values() == other.values()

    def __repr__(self) -> str:
        return "Event(" + ", ".join([f"{n}={v!r}" for n, v in zip(EVENT_FIELDS, self.values(), strict=True)]) + ")"


def deadletter_record(raw: bytes, exc: InvalidEvent, topic: str, partition: int, offset: int) -> bytes:
    """The dead-letter message: the reason, where the message came from, and its original bytes."""
    import base64

    return orjson.dumps(
        {
            "reason": exc.reason,
            "field": exc.field,
            "detail": exc.detail,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "original_b64": base64.b64encode(raw).decode("ascii"),
        }
    )
