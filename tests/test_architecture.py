"""The detection core stays plain Python: no Kafka, Faust or ClickHouse imports, no environment reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"
CORE = (
    "contract", "records", "errors", "sketches", "topk", "features",
    "detection", "alerts", "clusters", "engine", "chunks",
)  # fmt: skip
FORBIDDEN = ("kafka", "aiokafka", "faust", "mode", "clickhouse_driver", "chdb")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_infrastructure(module: str) -> None:
    assert not _imports(PIPELINE / f"{module}.py") & set(FORBIDDEN)


def test_only_settings_reads_the_environment() -> None:
    readers = [
        p.name for p in PIPELINE.glob("*.py")
        if p.name != "settings.py" and ("os.environ" in p.read_text() or "getenv(" in p.read_text())
    ]  # fmt: skip
    assert readers == ["stack.py"]  # passes settings.to_env() to the worker processes it starts
