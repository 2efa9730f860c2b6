"""The README documents every setting and both commands; .ci/run calls the README's test command."""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [f"DW_{n.upper()}" for n in Settings.model_fields if f"`DW_{n.upper()}`" not in README]
    assert not missing


def test_readme_commands_are_the_ones_ci_runs() -> None:
    assert "bash scripts/test.sh" in README
    assert "distillwatch demo" in README
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
