"""The real worker process against the real broker: dead-lettering without stopping."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from stackutil import consume_all, encode, event, isolated_settings, produce

from pipeline.stack import LocalStack

pytestmark = pytest.mark.integration


def test_bad_messages_are_deadlettered_with_distinct_reasons_and_worker_keeps_running(
    broker: str, tmp_path: Path
) -> None:
    s = isolated_settings(broker, tmp_path)
    missing_account = event(1)
    del missing_account["account_id"]
    huge = event(2, extra_blob="x" * (70 * 1024))
    bad = [
        (b"acct-1", b"{this is not json"),
        (b"acct-1", orjson.dumps(missing_account)),
        (b"acct-1", orjson.dumps(huge)),
    ]
    with LocalStack.create(s, tmp_path, with_broker=False) as stack:
        worker = stack.start_worker()
        produce(s, s.topic_requests, [encode(event(0))] + bad + [encode(event(i)) for i in range(3, 50)])
        dead = consume_all(s, s.topic_deadletter, lambda r: len(r) >= 3)
        stack.wait_drained(s.app_id, s.topic_requests, timeout_s=60)
        assert worker.poll() is None, "worker must keep running"

    envelopes = [orjson.loads(r.value) for r in dead]
    reasons = {(e["reason"], e["field"]) for e in envelopes}
    assert reasons == {("not_json", None), ("missing_field", "account_id"), ("too_large", None)}
    originals = {base64.b64decode(e["original_b64"]) for e in envelopes}
    assert originals == {v for _, v in bad}
    for e in envelopes:
        assert e["topic"] == s.topic_requests and e["offset"] >= 0 and e["partition"] >= 0
