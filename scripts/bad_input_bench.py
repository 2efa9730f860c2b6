#!/usr/bin/env python3
"""Throughput of one worker process on clean input vs input with 10 % invalid messages (issue 5).

    python scripts/bad_input_bench.py --events 200000 --bad-fraction 0.1

One private Tansu broker; three private topic sets loaded *before* any worker starts: ``clean``
with N simulated events (``pipeline.groundtruth.workload``); ``bad`` with the same events where
every 10th message is replaced by an invalid one of ordinary size (the hypothesis corpus of
``tests/hostile.py`` restricted to values <= ``--max-bad-bytes``, every reason but ``too_large``);
``hostile`` the same with the whole corpus (~5 % of its invalid values are payloads over 64 KiB,
so that set carries twice the bytes, and the dead-letter envelopes carry them again, base64). One
worker process per topic set (fresh consumer group), one after the other. Rate = messages / seconds
from the first consumed message (worker /metrics ``distillwatch_events_in_total`` > 0) to
``LocalStack.wait_drained`` (all offsets committed), and to "all processed" (``events_in`` = N).
Prints the rates and the bad/clean and hostile/clean ratios (bar: bad/clean >= 0.8). Not a timed
test: the machine is shared, run it a few times and take the median (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import orjson  # noqa: E402

from pipeline.groundtruth import workload  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402
from pipeline.stack import LocalStack  # noqa: E402
from pipeline.topics import ensure_topics  # noqa: E402


def _topics(tag: str) -> dict[str, str]:
    return {n: f"b{tag}.{n.removeprefix('topic_')}" for n in Settings.model_fields if n.startswith("topic_")}


def _load(s: Settings, messages: list[tuple[bytes, bytes | None]]) -> float:
    from kafka import KafkaProducer

    t0 = time.monotonic()
    p = KafkaProducer(linger_ms=50, batch_size=1 << 20, max_request_size=4 << 20, **s.kafka_client_kwargs())
    try:
        for k, v in messages:
            p.send(s.topic_requests, key=k, value=v)
        p.flush(300)
    finally:
        p.close()
    return time.monotonic() - t0


def _measure(stack: LocalStack, name: str, n: int, timeout_s: float) -> tuple[float, float]:
    """(processed rate, drained rate) in messages/s for one worker reading its topic from the start."""
    from stackutil import metric, metrics_text

    s = stack.settings
    worker = stack.start_worker(name)
    port = worker.web_port  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while metric(metrics_text(port), "distillwatch_events_in_total") <= 0:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"worker {name} consumed nothing; see {stack.workdir}/{name}.log")
        time.sleep(0.05)
    t_first = time.monotonic()
    while metric(metrics_text(port), "distillwatch_events_in_total") < n:
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"worker {name} did not process {n} messages; see {stack.workdir}/{name}.log")
        time.sleep(0.05)
    t_processed = time.monotonic()
    t_drained = stack.wait_drained(s.app_id, s.topic_requests, timeout_s, poll_s=0.1)
    stack.stop_worker(name)
    return n / (t_processed - t_first), n / (t_drained - t_first)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--bad-fraction", type=float, default=0.1)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--max-bad-bytes", type=int, default=2048, help="size cap of the `bad` set's invalid values")
    ap.add_argument("--rotate", type=int, default=0, help="start the measurements at phase K (order bias)")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    from hostile import corpus, expected_reason

    n = args.events
    events = workload(n)
    clean: list[tuple[bytes, bytes | None]] = [(str(e["account_id"]).encode(), orjson.dumps(e)) for e in events]
    every = round(1 / args.bad_fraction)
    hostile = [(k, v) for k, v in corpus(2000) if expected_reason(v) is not None]
    ordinary = [(k, v) for k, v in hostile if len(v or b"") <= args.max_bad_bytes]

    def mixed(invalid: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes | None]]:
        out = list(clean)
        for j, i in enumerate(range(every - 1, n, every)):
            out[i] = invalid[j % len(invalid)]
        return out

    sets = {"clean": clean, "bad": mixed(ordinary), "hostile": mixed(hostile)}
    n_bad = sum(expected_reason(v) is not None for _, v in sets["bad"])
    work = Path(tempfile.mkdtemp(prefix="dw-badbench-"))
    base = load_settings(kafka_partitions=args.partitions, worker_commit_interval_s=0.5)
    with LocalStack.create(base, work, with_broker=True) as stack:
        phases = {}
        for name, messages in sets.items():
            tag = uuid.uuid4().hex[:8]
            stack.settings = stack.settings.model_copy(update={"app_id": f"dw-bench-{name}-{tag}", **_topics(tag)})
            ensure_topics(stack.settings)
            secs = _load(stack.settings, messages)
            mb = sum(len(v or b"") for _, v in messages) / 1e6
            print(f"{name}: loaded {len(messages)} messages ({mb:.0f} MB) in {secs:.1f}s", flush=True)
            phases[name] = (stack.settings, len(messages))
        rates = {}
        order = list(phases)[args.rotate % 3 :] + list(phases)[: args.rotate % 3]
        for name in order:
            s, count = phases[name]
            stack.settings = s
            rates[name] = _measure(stack, name, count, args.timeout)
            print(f"{name}: processed {rates[name][0]:,.0f} msg/s, drained {rates[name][1]:,.0f} msg/s", flush=True)
    print(f"events={n} invalid={n_bad} ({n_bad / n:.1%}) partitions={args.partitions}")
    for name in ("bad", "hostile"):
        ratio_p, ratio_d = (rates[name][i] / rates["clean"][i] for i in (0, 1))
        print(f"ratio {name}/clean: processed {ratio_p:.2f}, drained {ratio_d:.2f}")
    print(f"bar: bad/clean drained >= 0.8; workdir {work}")
    return 0 if rates["bad"][1] / rates["clean"][1] >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
