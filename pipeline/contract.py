"""Wire contract v1 (``shared/contract/events-v1.md``): the request event as the core sees it
(``Event``), the contract's limits and categories, and the dead-letter record of a message that
breaks it. Decoding and validation: ``validation.decode_event``; the alert message: ``alerts.Alert``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

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


@dataclass(slots=True)
class Event:
    """One validated API request event (no prompt text: only the contract's hashes)."""

    event_id: str
    ts_ms: int
    account_id: str
    model: str
    status: int
    input_tokens: int
    output_tokens: int
    org_id: str = ""
    api_key_id: str = ""
    account_created_ms: int = 0
    endpoint: str = ""
    latency_ms: float = 0.0
    stream: bool = False
    ip: str = ""
    asn: int = -1
    country: str = ""
    user_agent: str = ""
    payment_fingerprint: str = ""
    simhash: int = -1
    template_hash: str = ""
    category: str = ""
    cot: bool = False
    tools: int = 0
    system_hash: str = ""


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
