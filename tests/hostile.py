"""Hostile ``api.requests`` message values generated with hypothesis (deterministic: fixed seed).

``corpus(n_invalid)`` returns ``(key, value)`` pairs until ``n_invalid`` of them are invalid by
``pipeline.validation.decode_event`` (the validator the JSON Schema test proves equal to
``schemas/``); mutations that happen to yield a valid event are kept too (the test counts them
as valid). Each value starts from a valid event drawn by hypothesis, then one mutation is
applied: invalid JSON (truncation, random bytes, raw control characters, bare NaN/Infinity),
invalid UTF-8, wrong types, missing fields, deep nesting, huge objects and payloads over 64 KiB,
extreme numbers, timestamps far in the past/future or malformed, non-object JSON, empty/null
values. ``value`` None is a Kafka null value (the worker reads it as ``b""``).

Used by ``tests/test_fuzz_deadletter.py`` and ``scripts/bad_input_bench.py``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from pipeline.contract import CATEGORIES
from pipeline.errors import InvalidEvent
from pipeline.settings import Settings
from pipeline.validation import decode_event

EID = "@EID@"  # replaced by a unique event id after generation (so valid mutants are not duplicates)
RAW = "@RAW@"  # a JSON string value replaced by a raw token (bare NaN, 1e400, 2**80 ...)
FIELDS_REQUIRED = ("event_id", "ts", "account_id", "model", "status", "input_tokens", "output_tokens")
# (path, kind) of every contract field a mutation may hit
FIELDS = FIELDS_REQUIRED + (
    "org_id", "api_key_id", "account_created_at", "endpoint", "latency_ms", "stream", "client",
    "prompt", "payment_fingerprint", "client.ip", "client.asn", "client.country", "client.user_agent",
    "prompt.simhash", "prompt.template_hash", "prompt.category", "prompt.cot_elicitation",
    "prompt.tools", "prompt.system_hash",
)  # fmt: skip
RAW_TOKENS = (
    "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e308", "-1e308", "4.9e-324",
    "18446744073709551616", "-9223372036854775809", "9223372036854775808", str(10**40), "-0", "0.0",
    "1E2", "01", "+1", ".5", "0x1F", "1_000", "undefined", "None", "nul", "tru",
)  # fmt: skip
TS_EXTREMES = (
    -1, 0, 1, 1_420_070_399_999, 1_420_070_400_000, 4_102_444_799_999, 4_102_444_800_000, 2**53,
    2**63 - 1, -(2**63), 253_402_300_799_000, "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "2014-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "2099-12-31T23:59:59.999+00:00",
    "2024-02-30T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00",
    "2024-01-01", "2024-01-01T00:00:00+24:00", "1700000000000", "now", "", 1.7e12, 1.7e12 + 0.5,
    1e308, True, None, [], {},
)  # fmt: skip
CONTROL = [chr(c) for c in range(32)] + ["\x7f", "\u2028", "\u2029", "\ufeff"]
BAD_UTF8 = (
    b"\xff", b"\xfe", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xed\xa0\x80",
    b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xf4\x90\x80\x80",
)  # fmt: skip

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=8,
)


@st.composite
def valid_event(draw: Any) -> dict[str, Any]:
    """A valid contract event (event_id is the placeholder ``EID``)."""
    ev: dict[str, Any] = {
        "event_id": EID,
        "ts": draw(st.one_of(
            st.integers(1_700_000_000_000, 1_800_000_000_000),
            st.sampled_from(["2025-03-01T12:00:00Z", "2025-03-01T12:00:00.123+02:00", "2025-03-01t12:00:00z"]),
        )),
        "account_id": f"fz-acct-{draw(st.integers(0, 40))}",
        "model": draw(st.sampled_from(["frontier-2", "frontier-2-mini", "m"])),
        "status": draw(st.sampled_from([200, 200, 200, 429, 500, 100, 599])),
        "input_tokens": draw(st.integers(0, 200_000)),
        "output_tokens": draw(st.integers(0, 200_000)),
    }  # fmt: skip
    if draw(st.booleans()):
        ev["client"] = {
            "ip": draw(st.sampled_from(["198.51.100.7", "2001:db8::1", "10.0.0.1"])),
            "asn": draw(st.integers(0, 2**32)),
            "country": draw(st.sampled_from(["US", "FR", "JP"])),
            "user_agent": draw(st.text(max_size=20)),
        }
    if draw(st.booleans()):
        ev["prompt"] = {
            "simhash": f"{draw(st.integers(0, 2**64 - 1)):016x}",
            "template_hash": "ab12",
            "category": draw(st.sampled_from(CATEGORIES)),
            "cot_elicitation": draw(st.booleans()),
            "tools": draw(st.integers(0, 50)),
        }
    if draw(st.booleans()):
        ev["prompt_text"] = draw(st.text(max_size=40))  # unknown field: ignored
    return ev


def _set(ev: dict[str, Any], path: str, value: Any) -> None:
    if "." in path:
        head, tail = path.split(".", 1)
        sub = ev.get(head)
        if not isinstance(sub, dict):
            sub = ev[head] = {}
        sub[tail] = value
    else:
        ev[path] = value


def _dump(obj: Any, ascii_only: bool = False) -> bytes:
    """stdlib JSON (big ints, NaN, Infinity and lone surrogates allowed: orjson would refuse them)."""
    text = json.dumps(obj, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


@st.composite
def hostile_value(draw: Any) -> bytes | None:
    """One mutated message value (bytes, or None for a Kafka null value)."""
    ev = draw(valid_event())
    kind = draw(st.sampled_from((
        "valid", "missing", "wrong_type", "raw_token", "ts", "truncate", "bytes", "bad_utf8", "control",
        "non_object", "nested", "huge", "too_long", "bad_format", "empty", "garbage_text",
    )))  # fmt: skip
    if kind == "valid":
        return _dump(ev, draw(st.booleans()))
    if kind == "missing":
        for f in draw(st.lists(st.sampled_from(FIELDS_REQUIRED), min_size=1, max_size=3, unique=True)):
            ev.pop(f, None)
        return _dump(ev)
    if kind == "wrong_type":
        _set(ev, draw(st.sampled_from(FIELDS)), draw(json_values))
        return _dump(ev, draw(st.booleans()))
    if kind == "raw_token":
        _set(ev, draw(st.sampled_from(FIELDS)), RAW)
        return _dump(ev).replace(f'"{RAW}"'.encode(), draw(st.sampled_from(RAW_TOKENS)).encode(), 1)
    if kind == "ts":
        field = draw(st.sampled_from(("ts", "ts", "account_created_at")))
        value = draw(st.one_of(
            st.sampled_from(TS_EXTREMES), st.integers(-(2**63), 2**63 - 1),
            st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()),
        ))  # fmt: skip
        ev[field] = value
        return _dump(ev)
    if kind == "truncate":
        raw = _dump(ev)
        return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    if kind == "bytes":
        raw = bytearray(_dump(ev))
        for _ in range(draw(st.integers(1, 4))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw) if draw(st.booleans()) else draw(st.binary(max_size=200))
    if kind == "bad_utf8":
        raw = _dump(ev)
        at = draw(st.integers(0, len(raw)))
        if draw(st.booleans()):  # inside a string value
            at = raw.find(b'"', raw.find(b":")) + 1 or at
        return raw[:at] + draw(st.sampled_from(BAD_UTF8)) + raw[at:]
    if kind == "control":
        field = draw(st.sampled_from(("event_id", "account_id", "model", "org_id", "endpoint", "client.user_agent")))
        text = draw(st.text(alphabet=st.sampled_from(CONTROL) | st.characters(), min_size=1, max_size=20))
        _set(ev, field, text)
        raw = _dump(ev)
        if draw(st.booleans()):  # raw (unescaped) control characters: invalid JSON
            c = draw(st.sampled_from(CONTROL[:32]))
            raw = raw.replace(b'"model":"', b'"model":"' + c.encode(), 1)
        return raw
    if kind == "non_object":
        value = draw(json_values.filter(lambda v: not isinstance(v, dict)))
        return _dump(value, draw(st.booleans()))
    if kind == "nested":
        depth = draw(st.integers(1, 5000))
        opener, closer = draw(st.sampled_from((("[", "]"), ('{"a":', "}"))))
        deep = opener * depth + "1" + closer * depth
        if draw(st.booleans()):
            return deep.encode()
        ev["extra"] = RAW
        if draw(st.booleans()):
            ev.pop(draw(st.sampled_from(FIELDS_REQUIRED)))
        return _dump(ev).replace(f'"{RAW}"'.encode(), deep.encode(), 1)
    if kind == "huge":
        target = draw(st.one_of(st.integers(65_400, 65_700), st.integers(60_000, 150_000)))
        if draw(st.booleans()):
            ev["blob"] = "x" * max(0, target - len(_dump(ev)) - 10)
        else:  # many keys
            ev["many"] = {f"k{i}": i for i in range(target // 12)}
        return _dump(ev)
    if kind == "too_long":
        field = draw(st.sampled_from(("event_id", "account_id", "model", "client.user_agent", "org_id")))
        _set(ev, field, "a" * draw(st.sampled_from((0, 128, 129, 512, 513, 5000))))
        return _dump(ev)
    if kind == "bad_format":
        field, value = draw(st.sampled_from((
            ("client.ip", "999.1.1.1"), ("client.ip", "fe80::1%eth0"), ("client.ip", "1.2.3"),
            ("client.ip", "::ffff:1.2.3.4"), ("client.country", "usa"), ("client.country", "us"),
            ("prompt.simhash", "XYZ"), ("prompt.simhash", "0123456789ABCDEF"), ("prompt.simhash", "0" * 17),
            ("prompt.template_hash", "G1"), ("prompt.category", "nope"), ("status", 99), ("status", 600),
            ("input_tokens", -1), ("latency_ms", -0.5), ("latency_ms", 1e12), ("prompt.tools", -3),
        )))  # fmt: skip
        _set(ev, field, value)
        return _dump(ev)
    if kind == "empty":
        return draw(st.sampled_from((None, b"", b" ", b"\n", b"null", b"{}", b"[]", b'""', b"\x00")))
    # garbage_text: arbitrary unicode, sometimes JSON-looking
    return draw(st.text(max_size=100)).encode("utf-8", "surrogatepass")


def expected_reason(value: bytes | None) -> str | None:
    """What the worker must do with ``value``: None if valid, else the dead-letter reason (a valid
    event stamped more than ``DW_MAX_FUTURE_SKEW_S`` ahead of now is ``out_of_range`` too)."""
    try:
        ev = decode_event(value if value is not None else b"")
    except InvalidEvent as exc:
        return exc.reason
    if ev.ts_ms > time.time() * 1000 + Settings.model_fields["max_future_skew_s"].default * 1000:
        return "out_of_range"
    return None


def corpus(n_invalid: int, rng_seed: int = 20250905) -> list[tuple[bytes, bytes | None]]:
    """``(key, value)`` pairs in generation order, until ``n_invalid`` invalid values were drawn."""
    drawn: list[bytes | None] = []

    @seed(rng_seed)
    @settings(
        max_examples=int(n_invalid * 1.7) + 100, database=None, deadline=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(hostile_value())
    def collect(value: bytes | None) -> None:
        drawn.append(value)

    collect()
    out: list[tuple[bytes, bytes | None]] = []
    bad = 0
    for i, value in enumerate(drawn):
        if value is not None:
            value = value.replace(EID.encode(), f"fz-{i:07d}".encode())
        try:  # real keys: the account id when there is one
            key = decode_event(value or b"").account_id.encode()
        except InvalidEvent as exc:
            key = f"fz-acct-{i % 41}".encode()
            bad += 1
            assert exc.reason
        out.append((key, value))
        if bad >= n_invalid:
            return out
    raise AssertionError(f"hypothesis drew only {bad} invalid values of {len(drawn)} ({n_invalid} wanted)")
