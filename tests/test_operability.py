"""Operability: the worker's /metrics, /livez, /readyz while it processes real traffic; JSON logs that
locate every dead-lettered message; the sink's endpoints (pipeline.sinkweb); the worker's malloc
threshold (pipeline.tuning)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
from stackutil import encode, event, isolated_settings, metric, produce

from pipeline.broker import free_port
from pipeline.metrics import Metrics
from pipeline.sinkweb import SinkWeb, start_sink_web
from pipeline.stack import LocalStack

pytestmark = pytest.mark.integration
CONTROL = re.compile(r"\x08|\x1b\[[0-9;?]*[A-Za-z]")


def get(port: int, path: str) -> tuple[int, bytes]:
    """(status, body) of GET http://127.0.0.1:PORT/PATH; (0, b"") if nothing answers yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""




def wait_for(check, timeout_s: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_worker_metrics_health_and_deadletter_logs(broker: str, tmp_path: Path) -> None:
    s = isolated_settings(broker, tmp_path)
    good = [encode(event(i, account=f"acct-{i % 7}")) for i in range(400)]
    bad = [(b"acct-1", b"{not json"), (b"acct-2", b"[1, 2]"), (b"acct-3", orjson.dumps({"event_id": "x"}))]
    with LocalStack.create(s, tmp_path, with_broker=False) as stack:
        worker = stack.start_worker()
        port = worker.web_port  # type: ignore[attr-defined]
        assert wait_for(lambda: get(port, "/livez")[0] == 200, 60)
        # Ready means partitions assigned: /readyz lists them once the group has settled.
        status, body = wait_for(lambda: (r := get(port, "/readyz"))[0] == 200 and r, 60)
        assert orjson.loads(body)["ready"] is True and orjson.loads(body)["partitions"]
        produce(s, s.topic_requests, good[:200] + bad + good[200:])
        stack.wait_drained(s.app_id, s.topic_requests, timeout_s=60)

        def metrics_seen() -> str | None:
            status, body = get(port, "/metrics")
            text = body.decode()
            done = status == 200 and metric(text, "distillwatch_events_in_total") >= 403
            return text if done else None

        text = wait_for(metrics_seen, 30)
        assert metric(text, "distillwatch_events_valid_total") == 400
        assert metric(text, "distillwatch_accounts_tracked") == 7  # as of this scrape, not the last checkpoint
        reasons = {
            r: metric(text, "distillwatch_deadlettered_total", reason=r)
            for r in re.findall(r'distillwatch_deadlettered_total\{reason="(\w+)"\}', text)
        }
        assert sum(reasons.values()) == 3 and len(reasons) >= 2, reasons
        status, body = get(port, "/readyz")
        assert status == 200 and orjson.loads(body)["ready"] is True and orjson.loads(body)["partitions"]
        assert get(port, "/livez")[0] == 200
        assert worker.poll() is None
    # Every line is a JSON object. Faust's terminal handling writes a cursor-control sequence
    # ("\b\x1b[?25h") in front of the first line even without a TTY (reported): strip such codes.
    log = [CONTROL.sub("", line) for line in (tmp_path / "w1.log").read_text().splitlines() if line.strip()]
    records = [orjson.loads(line) for line in log]
    dead = [r for r in records if r.get("msg") == "dead-lettered message"]
    assert len(dead) == 3, log[-20:]
    for r in dead:
        assert r["topic"] == s.topic_requests and r["partition"] >= 0 and r["offset"] >= 0 and r["reason"]
        assert r["level"] == "warning" and r["ts"]
    assert {r["reason"] for r in dead} == set(reasons)


def test_sink_web_endpoints() -> None:
    metrics, ready = Metrics(), {"value": False}
    web = SinkWeb(metrics, lambda: ready["value"], host="127.0.0.1", port=0)
    try:
        assert get(web.port, "/livez")[0] == 200
        assert get(web.port, "/readyz") == (503, b'{"ready":false}')
        ready["value"] = True
        assert get(web.port, "/readyz") == (200, b'{"ready":true}')
        metrics.sink_rows.labels("alerts").inc(42)
        metrics.sink_failures.inc()
        status, body = get(web.port, "/metrics")
        assert status == 200
        assert metric(body.decode(), "distillwatch_sink_rows_total", table="alerts") == 42
        assert metric(body.decode(), "distillwatch_sink_failures_total") == 1
        assert get(web.port, "/nope")[0] == 404
        # A probe that raises means "not ready", never a crashed endpoint.
        broken = SinkWeb(metrics, lambda: 1 / 0 > 0, host="127.0.0.1", port=0)  # type: ignore[operator]
        assert get(broken.port, "/readyz")[0] == 503
        broken.close()
    finally:
        web.close()
    assert get(web.port, "/livez")[0] == 0, "closed: nothing listens any more"


def test_start_sink_web_on_a_taken_port_logs_and_returns_none(caplog: pytest.LogCaptureFixture) -> None:
    from pipeline.settings import load_settings

    port = free_port()
    first = start_sink_web(load_settings(sink_web_port=port), Metrics(), lambda: True)
    assert first is not None and get(port, "/livez")[0] == 200
    try:
        assert start_sink_web(load_settings(sink_web_port=port), Metrics(), lambda: True) is None
        assert "sink web endpoints not started" in caplog.text
    finally:
        first.close()


FREED_BLOCKS = """
import os, sys
from pipeline.benchparts import rss_bytes
from pipeline.tuning import tune_malloc
print(tune_malloc(int(sys.argv[1])))
big = b"x" * (16 << 20)
del big  # a large block freed: an adaptive glibc now serves blocks up to 16 MB from the heap
before = rss_bytes(os.getpid())
blocks, fences = [], []
for _ in range(60):  # each block has a kept 64 KB block above it: on the heap, it is never at the top
    blocks.append(b"x" * (1 << 20))
    fences.append(b"x" * (64 << 10))
del blocks
print((rss_bytes(os.getpid()) - before) >> 20)
"""


def test_pinned_malloc_threshold_returns_freed_blocks_to_the_os() -> None:
    """60 MB of 1 MB blocks, freed: an adaptive malloc keeps them resident, a pinned one does not
    (the 64 KB blocks, 4 MB, are kept either way)."""
    kept = {}
    for threshold in (0, 131072):
        out = subprocess.run([sys.executable, "-c", FREED_BLOCKS, str(threshold)], capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
        kept[threshold] = (out[0] == "True", int(out[1]))
    assert kept[0][0] is False and kept[0][1] >= 50, kept
    assert kept[131072][0] is True and kept[131072][1] <= 8, kept
