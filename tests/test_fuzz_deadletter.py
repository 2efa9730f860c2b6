"""Issue 5, "nothing let in": hostile input fuzzed (hypothesis) through the REAL worker process.

A deterministic hypothesis corpus (``tests/hostile.py``: invalid JSON and UTF-8, wrong types,
missing fields, deep nesting, huge objects and payloads over 64 KiB, control characters, extreme
numbers, absurd timestamps, non-object JSON, empty/null values) is produced with real keys,
interleaved with clean events, to a private topic set on the session's Tansu broker; one worker
process consumes it. Every message's expected fate is ``pipeline.validation.decode_event``'s
(proven equal to the JSON Schema in tests/test_schemas.py). Then:

- every invalid message has exactly one dead-letter envelope, found by (partition, offset), with
  the original bytes and the machine-readable reason the validator gives; no valid one has one;
- the worker counted every valid message (``distillwatch_events_valid_total``) and every message
  (``distillwatch_events_in_total``); its per-reason counters equal the corpus histogram;
- the worker process is still the same live process and logged no error.

CI size: 2,000 invalid messages. Full size: ``DW_FUZZ_N=10000 pytest -s tests/test_fuzz_deadletter.py``
(figures in docs/reliability.md).
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hostile import corpus, expected_reason
from stackutil import encode, event, isolated_settings, metric, metrics_text

from pipeline.contract import REASONS
from pipeline.stack import LocalStack, read_topic

pytestmark = pytest.mark.integration
N_INVALID = int(os.environ.get("DW_FUZZ_N", "2000"))
CONTROL = re.compile(r"\x08|\x1b\[[0-9;?]*[A-Za-z]")


def test_hostile_input_is_all_deadlettered_and_nothing_valid_is_lost(broker: str, tmp_path: Path) -> None:
    t0 = time.monotonic()
    hostile = corpus(N_INVALID)
    t_gen = time.monotonic() - t0
    # interleave clean events (one every 4 hostile messages)
    messages: list[tuple[bytes, bytes | None]] = []
    clean = 0
    for i, msg in enumerate(hostile):
        messages.append(msg)
        if i % 4 == 3:
            messages.append(encode(event(clean, account=f"clean-acct-{clean % 7}")))
            clean += 1
    expected = [expected_reason(v) for _, v in messages]
    n_invalid = sum(r is not None for r in expected)
    n_valid = len(messages) - n_invalid
    assert n_invalid >= N_INVALID
    histogram = Counter(r for r in expected if r is not None)

    s = isolated_settings(broker, tmp_path)
    from kafka import KafkaProducer

    with LocalStack.create(s, tmp_path, with_broker=False) as stack:
        worker = stack.start_worker("w1", log_level="info")
        producer = KafkaProducer(max_request_size=4 << 20, linger_ms=20, retries=5, **s.kafka_client_kwargs())
        try:
            futures = [producer.send(s.topic_requests, key=k, value=v) for k, v in messages]
            producer.flush(120)
            where = [(f.get(0).partition, f.get(0).offset) for f in futures]
        finally:
            producer.close()
        assert len(set(where)) == len(messages)
        stack.wait_drained(s.app_id, s.topic_requests, timeout_s=120)
        port = worker.web_port  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while metric(text := metrics_text(port), "distillwatch_events_in_total") < len(messages):
            assert time.monotonic() < deadline, "worker metrics never reached the message count"
            time.sleep(0.3)
        dead = [orjson.loads(v) for v in read_topic(s, s.topic_deadletter, idle_ms=2000)]
        alive = worker.poll() is None
        seconds = time.monotonic() - t0

    # every invalid message: exactly one envelope, its bytes, the validator's reason
    by_pos: dict[tuple[int, int], list[dict[str, object]]] = {}
    for env in dead:
        by_pos.setdefault((int(env["partition"]), int(env["offset"])), []).append(env)
    problems = []
    for (_, value), reason, pos in zip(messages, expected, where, strict=True):
        envs = by_pos.get(pos, [])
        if reason is None:
            if envs:
                problems.append(f"valid message at {pos} dead-lettered: {envs[0]['reason']}")
            continue
        if len(envs) != 1:
            problems.append(f"invalid message at {pos} ({reason}) has {len(envs)} envelopes")
            continue
        env = envs[0]
        if base64.b64decode(str(env["original_b64"])) != (value or b""):
            problems.append(f"envelope at {pos}: original bytes differ")
        if env["reason"] != reason or env["reason"] not in REASONS or env["topic"] != s.topic_requests:
            problems.append(f"envelope at {pos}: reason {env['reason']!r}, expected {reason!r}")
    assert not problems, problems[:20]
    assert len(dead) == n_invalid

    assert metric(text, "distillwatch_events_in_total") == len(messages)
    assert metric(text, "distillwatch_events_valid_total") == n_valid, "a valid event was not counted"
    got = {r: metric(text, "distillwatch_deadlettered_total", reason=r) for r in REASONS}
    assert {r: n for r, n in got.items() if n} == dict(histogram)

    assert alive, "the worker died"
    log = [CONTROL.sub("", ln) for ln in (tmp_path / "w1.log").read_text().splitlines() if ln.strip()]
    records = [orjson.loads(ln) for ln in log]
    errors = [r for r in records if r.get("level") in ("error", "critical")]
    assert not errors, errors[:5]
    assert sum(r.get("msg") == "dead-lettered message" for r in records) == n_invalid
    print(
        f"\nfuzz: {len(messages)} messages ({n_invalid} invalid, {n_valid} valid of which {clean} clean), "
        f"dead-lettered {len(dead)} (100%), valid counted {int(metric(text, 'distillwatch_events_valid_total'))}, "
        f"worker alive={alive}, errors logged={len(errors)}, reasons={dict(sorted(histogram.items()))}, "
        f"generation {t_gen:.1f}s, total {seconds:.1f}s"
    )
