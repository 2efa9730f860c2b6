"""A CI-sized simulate + evaluate run through the CLI."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.simulate import SimConfig, labels


def test_simulate_evaluate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev, lab, res, al = (tmp_path / n for n in ("e.jsonl", "l.csv", "r.json", "a.jsonl"))
    assert (
        main(
            [
                "simulate",
                "--out-events",
                str(ev),
                "--out-labels",
                str(lab),
                "--seed",
                "11",
                "--accounts",
                "150",
                "--hours",
                "3",
            ]
        )
        == 0
    )
    with open(lab) as fh:
        rows = list(csv.DictReader(fh))
    assert rows and set(rows[0]) == {"account_id", "label", "scenario"}
    assert {r["label"] for r in rows} == {"attack", "benign"}
    with open(ev, "ab") as fh:
        fh.write(b'not json\n{"event_id": "x"}\n')
    assert main(["evaluate", str(ev), "--labels", str(lab), "--json", str(res), "--alerts-out", str(al)]) == 0
    m = json.loads(res.read_text())
    assert m["invalid_lines"] == 2 and m["alerts"] > 0
    assert m["precision"] >= 0.8 and m["recall"] >= 0.8, m
    assert "precision" in capsys.readouterr().out
    assert al.read_text().count("\n") == m["alerts"]


def test_labels_deterministic_and_families_present() -> None:
    cfg = SimConfig(seed=3, accounts=200, hours=1)
    a = labels(cfg)
    assert a == labels(cfg) and len(a) == 200
    assert {s for _, _, s in a} >= {
        "chat",
        "production_app",
        "benchmark",
        "corporate_nat",
        "hydra_cluster",
        "model_hopper",
        "low_and_slow",
        "category_sweep",
    }


def test_user_mistakes_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    assert main(["evaluate", str(tmp_path / "missing.jsonl"), "--labels", str(bad)]) == 2
    assert main(["evaluate", str(tmp_path / "missing.jsonl"), "--labels", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert "header" in err and "Traceback" not in err


def test_evaluate_sets_aside_future_stamped_events_as_the_worker_does(tmp_path: Path) -> None:
    """An event stamped a day ahead of the wall clock, in the middle of a file: ``evaluate`` sets it
    aside (the worker dead-letters it, ``max_future_skew_s``) and reports the rest as without it."""
    from pipeline.evaluate import evaluate_file, read_labels

    ev, lab = tmp_path / "e.jsonl", tmp_path / "l.csv"
    assert main(["simulate", "--out-events", str(ev), "--out-labels", str(lab), "--seed", "12",
                 "--accounts", "60", "--hours", "2"]) == 0  # fmt: skip
    lines = ev.read_bytes().splitlines(keepends=True)
    future = json.loads(lines[len(lines) // 2])
    future["event_id"], future["ts"] = "from-the-future", int(time.time() * 1000) + 86_400_000
    ahead = tmp_path / "ahead.jsonl"
    ahead.write_bytes(b"".join(lines[: len(lines) // 2] + [json.dumps(future).encode() + b"\n"]
                               + lines[len(lines) // 2 :]))  # fmt: skip
    metrics = []
    for path in (ev, ahead):
        out = tmp_path / f"{path.stem}.json"
        assert main(["evaluate", str(path), "--labels", str(lab), "--json", str(out)]) == 0
        metrics.append(json.loads(out.read_text()))
    assert (metrics[0]["future_events"], metrics[1]["future_events"]) == (0, 1)
    timing = ("seconds", "events_per_s", "future_events")
    assert {k: v for k, v in metrics[1].items() if k not in timing} == {
        k: v for k, v in metrics[0].items() if k not in timing
    }
    unchecked = evaluate_file(str(ahead), read_labels(str(lab)), progress=False)  # the check off
    assert unchecked["events"] == metrics[0]["events"] + 1 and unchecked["future_events"] == 0
