"""A CI-sized simulate + evaluate run through the CLI."""

from __future__ import annotations

import csv
import json
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
