"""Decode and validate ``api.requests`` messages against wire contract v1 (``contract``).

``decode_event`` is on the hot path: one ``orjson.loads`` plus a handful of
type checks, no per-field function calls for the common case.

>>> e = decode_event(b'{"event_id":"e1","ts":1700000000000,"account_id":"a",'
...                  b'"model":"m","status":200,"input_tokens":5,"output_tokens":9}')
>>> (e.account_id, e.ts_ms, e.category)
('a', 1700000000000, '')
>>> decode_event(b'{"event_id":"e1"}')
Traceback (most recent call last):
...
pipeline.errors.InvalidEvent: missing_field:account_id
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

import orjson

from pipeline.contract import (
    CATEGORY_INDEX,
    MAX_ID_CHARS,
    MAX_MESSAGE_BYTES,
    MAX_TS_MS,
    MAX_UA_CHARS,
    MIN_TS_MS,
    Event,
)
from pipeline.errors import InvalidEvent

_HEX16 = re.compile(r"[0-9a-f]{16}\Z").match
_HEX = re.compile(r"[0-9a-f]{1,128}\Z").match
_COUNTRY = re.compile(r"[A-Z]{2}\Z").match
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}\Z").match
# RFC 3339 date-time with offset (T/Z in either case); field ranges are checked by fromisoformat.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
).match
_REQUIRED_STR = ("event_id", "account_id", "model")
_REQUIRED_INT = ("status", "input_tokens", "output_tokens")
_MAX_INT = 2**63 - 1


def _valid_ip(s: str) -> bool:
    """Exactly what ``ipaddress`` (and JSON Schema ``ipv4``/``ipv6``) accept, minus IPv6 scope ids."""
    if _IPV4(s):
        return True
    if ":" not in s:
        return False
    try:
        return not ipaddress.IPv6Address(s).scope_id
    except ValueError:
        return False


def _integral(v: object, field: str) -> int:
    """JSON has one number type: ``5.0`` is the integer 5 (as JSON Schema's ``integer`` says)."""
    if type(v) is float and v.is_integer():
        return int(v)
    raise InvalidEvent("wrong_type", field, "integer expected")


def parse_ts(value: object, field: str) -> int:
    """RFC 3339 string with offset, or integer epoch milliseconds -> epoch ms."""
    if type(value) is int:
        ms = value
    elif type(value) is str:
        if not _RFC3339(value):
            raise InvalidEvent("bad_format", field, "not RFC 3339 with offset")
        try:
            dt = datetime.fromisoformat(value.upper())
        except ValueError:
            raise InvalidEvent("bad_format", field, "not RFC 3339") from None
        ms = int(dt.timestamp() * 1000)
    elif type(value) is float:
        ms = _integral(value, field)
    else:
        raise InvalidEvent("wrong_type", field, "string or integer expected")
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise InvalidEvent("out_of_range", field, "outside 2015..2100")
    return ms


def _opt_str(obj: dict, key: str, limit: int = MAX_ID_CHARS) -> str:  # type: ignore[type-arg]
    v = obj.get(key)
    if v is None:
        return ""
    if type(v) is not str:
        raise InvalidEvent("wrong_type", key, "string expected")
    if len(v) > limit:
        raise InvalidEvent("out_of_range", key, f"longer than {limit}")
    return v


def _opt_int(obj: dict, key: str, default: int) -> int:  # type: ignore[type-arg]
    v = obj.get(key)
    if v is None:
        return default
    if type(v) is not int:
        v = _integral(v, key)
    if not 0 <= v <= _MAX_INT:
        raise InvalidEvent("out_of_range", key, "must be >= 0")
    return v


def _opt_hex(obj: dict, key: str, check=_HEX) -> str:  # type: ignore[no-untyped-def,type-arg]
    v = _opt_str(obj, key)
    if v and not check(v):
        raise InvalidEvent("bad_format", key, "lowercase hex expected")
    return v


def _sub(d: dict, key: str) -> dict:  # type: ignore[type-arg]
    v = d.get(key)
    if v is None:
        return {}
    if type(v) is not dict:
        raise InvalidEvent("wrong_type", key, "object expected")
    return v


def decode_event(raw: bytes) -> Event:
    """Decode and validate one ``api.requests`` message value; raise InvalidEvent with a reason."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("too_large", None, f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "invalid_utf8" if "utf-8" in str(exc).lower() else "not_json"
        raise InvalidEvent(reason, None, str(exc)[:120]) from None
    if type(d) is not dict:
        raise InvalidEvent("not_object", None, type(d).__name__)
    return _common_event(d) or event_from_dict(d)


_OK_IP: dict[str, bool] = {}  # validated addresses (bounded memo: the same clients recur)


def _common_event(d: dict) -> Event | None:  # type: ignore[type-arg]
    """Fast path for the common well-formed shape; None means "let the full validator decide".

    Accepts only what ``_event_from_dict`` accepts, with the same values (tests compare the two).
    """
    g = d.get
    eid, acct, model, ts = g("event_id"), g("account_id"), g("model"), g("ts")
    status, tin, tout, created = g("status"), g("input_tokens"), g("output_tokens"), g("account_created_at")
    lat, stream, client, prompt = g("latency_ms", 0.0), g("stream", False), g("client"), g("prompt")
    org, key, endpoint, pay = g("org_id"), g("api_key_id"), g("endpoint"), g("payment_fingerprint")
    if not (
        type(eid) is str and type(acct) is str and type(model) is str and type(ts) is int
        and type(status) is int and type(tin) is int and type(tout) is int
        and 0 < len(eid) <= MAX_ID_CHARS and 0 < len(acct) <= MAX_ID_CHARS and 0 < len(model) <= MAX_ID_CHARS
        and MIN_TS_MS <= ts < MAX_TS_MS and 100 <= status <= 599 and 0 <= tin <= _MAX_INT and 0 <= tout <= _MAX_INT
        and (created is None or (type(created) is int and MIN_TS_MS <= created < MAX_TS_MS))
        and (type(lat) is float or type(lat) is int) and 0 <= lat < 1e12 and type(stream) is bool
        and type(client) is dict and type(prompt) is dict
        and (org is None or (type(org) is str and len(org) <= MAX_ID_CHARS))
        and (key is None or (type(key) is str and len(key) <= MAX_ID_CHARS))
        and (endpoint is None or (type(endpoint) is str and len(endpoint) <= MAX_ID_CHARS))
        and (pay is None or (type(pay) is str and len(pay) <= MAX_ID_CHARS))
    ):  # fmt: skip
        return None
    cg, pg = client.get, prompt.get
    ip, asn, country, ua = cg("ip"), cg("asn"), cg("country"), cg("user_agent")
    sim, tpl, cat, cot = pg("simhash"), pg("template_hash"), pg("category"), pg("cot_elicitation", False)
    tools, system = pg("tools", 0), pg("system_hash")
    if not (
        (ip is None or (type(ip) is str and (_OK_IP.get(ip) or _memo_ip(ip))))
        and (asn is None or (type(asn) is int and 0 <= asn <= _MAX_INT))
        and (country is None or (type(country) is str and _COUNTRY(country) is not None))
        and (ua is None or (type(ua) is str and len(ua) <= MAX_UA_CHARS))
        and (sim is None or (type(sim) is str and _HEX16(sim) is not None))
        and (tpl is None or (type(tpl) is str and _HEX(tpl) is not None))
        and (cat is None or (type(cat) is str and cat in CATEGORY_INDEX)) and type(cot) is bool
        and type(tools) is int and 0 <= tools <= _MAX_INT
        and (system is None or (type(system) is str and _HEX(system) is not None))
    ):  # fmt: skip
        return None
    return Event(
        eid, ts, acct, model, status, tin, tout, org or "", key or "", created or 0, endpoint or "",
        float(lat), stream, ip or "", -1 if asn is None else asn, country or "", ua or "", pay or "",
        int(sim, 16) if sim else -1, tpl or "", cat or "", cot, tools, system or "",
    )  # fmt: skip


def _memo_ip(ip: str) -> bool:
    ok = len(ip) <= 45 and _valid_ip(ip)
    if ok:
        if len(_OK_IP) >= 65_536:
            _OK_IP.clear()
        _OK_IP[ip] = True
    return ok


_NESTED = {
    "ip": "client.ip", "asn": "client.asn", "country": "client.country",
    "user_agent": "client.user_agent", "simhash": "prompt.simhash",
    "template_hash": "prompt.template_hash", "category": "prompt.category",
    "tools": "prompt.tools", "system_hash": "prompt.system_hash",
}  # fmt: skip


def event_from_dict(d: dict) -> Event:  # type: ignore[type-arg]
    """Validate an already-parsed event object (offline files use this too)."""
    try:
        return _event_from_dict(d)
    except InvalidEvent as exc:
        exc.field = _NESTED.get(exc.field or "", exc.field)
        raise


def _event_from_dict(d: dict) -> Event:  # type: ignore[type-arg]
    for key in _REQUIRED_STR:
        v = d.get(key)
        if v is None:
            raise InvalidEvent("missing_field", key)
        if type(v) is not str:
            raise InvalidEvent("wrong_type", key, "string expected")
        if not 0 < len(v) <= MAX_ID_CHARS:
            raise InvalidEvent("out_of_range", key, "1..128 chars")
    ints: list[int] = []
    for key in _REQUIRED_INT:
        v = d.get(key)
        if v is None:
            raise InvalidEvent("missing_field", key)
        if type(v) is not int:
            v = _integral(v, key)
        if not 0 <= v <= _MAX_INT:
            raise InvalidEvent("out_of_range", key, "must be >= 0")
        ints.append(v)
    status, input_tokens, output_tokens = ints
    if not 100 <= status <= 599:
        raise InvalidEvent("out_of_range", "status", "100..599")
    ts = d.get("ts")
    if ts is None:
        raise InvalidEvent("missing_field", "ts")
    ts_ms = ts if type(ts) is int and MIN_TS_MS <= ts < MAX_TS_MS else parse_ts(ts, "ts")
    created = d.get("account_created_at")
    created_ms = 0 if created is None else parse_ts(created, "account_created_at")
    latency = d.get("latency_ms", 0.0)
    if latency is None:
        latency = 0.0
    elif type(latency) not in (int, float) or not 0 <= latency < 1e12:
        raise InvalidEvent("wrong_type" if type(latency) not in (int, float) else "out_of_range", "latency_ms")
    stream = d.get("stream", False)
    if type(stream) is not bool and stream is not None:
        raise InvalidEvent("wrong_type", "stream", "boolean expected")
    client = _sub(d, "client")
    prompt = _sub(d, "prompt")
    ip = _opt_str(client, "ip", 45)
    if ip and not _valid_ip(ip):
        raise InvalidEvent("bad_format", "client.ip", "IPv4 or IPv6 expected")
    country = _opt_str(client, "country", 2)
    if country and not _COUNTRY(country):
        raise InvalidEvent("bad_format", "client.country", "ISO 3166-1 alpha-2 expected")
    simhash = _opt_hex(prompt, "simhash", _HEX16)
    category = _opt_str(prompt, "category")
    if category and category not in CATEGORY_INDEX:
        raise InvalidEvent("out_of_range", "prompt.category", "unknown category")
    cot = prompt.get("cot_elicitation", False)
    if type(cot) is not bool and cot is not None:
        raise InvalidEvent("wrong_type", "prompt.cot_elicitation", "boolean expected")
    return Event(
        d["event_id"], ts_ms, d["account_id"], d["model"], status, input_tokens,
        output_tokens, _opt_str(d, "org_id"), _opt_str(d, "api_key_id"), created_ms,
        _opt_str(d, "endpoint"), float(latency), bool(stream), ip, _opt_int(client, "asn", -1),
        country, _opt_str(client, "user_agent", MAX_UA_CHARS), _opt_str(d, "payment_fingerprint"),
        int(simhash, 16) if simhash else -1, _opt_hex(prompt, "template_hash"), category,
        bool(cot), _opt_int(prompt, "tools", 0), _opt_hex(prompt, "system_hash"),
    )  # fmt: skip
