"""Build hook: compiles the detection core (``pipeline.compiled.MODULES``) with Cython.

Everything else about the package is in pyproject.toml. The modules are compiled from their
unchanged source (``annotation_typing`` off: type hints stay hints, Python semantics are kept),
with the C types of a module's ``.pxd`` beside it where there is one (extension types, typed locals);
each extension is optional, so a machine without a C compiler installs the same modules
uncompiled. The SHA-256 of every compiled source (.py and .pxd) goes to ``pipeline/compiled-sources.json``
(``SOURCES_FILE``), which ``pipeline.compiled.check_fresh`` compares against the sources before
any command runs.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "pipeline"


def _compiled_constant(name: str) -> object:
    """A literal constant of pipeline/compiled.py, read without importing the package (build isolation)."""
    for node in ast.parse((PACKAGE / "compiled.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"pipeline/compiled.py defines no {name}")


MODULES: tuple[str, ...] = _compiled_constant("MODULES")  # type: ignore[assignment]
SOURCES_FILE: str = _compiled_constant("SOURCES_FILE")  # type: ignore[assignment]


def _source_digest(module: str) -> str:
    """``pipeline.compiled.source_digest`` (the package cannot be imported here): its .py and .pxd."""
    h = hashlib.sha256((PACKAGE / f"{module}.py").read_bytes())
    pxd = PACKAGE / f"{module}.pxd"
    if pxd.exists():
        h.update(pxd.read_bytes())
    return h.hexdigest()


(PACKAGE / SOURCES_FILE).write_text(json.dumps({m: _source_digest(m) for m in MODULES}, indent=1) + "\n")
EXTENSIONS = cythonize(
    [Extension(f"pipeline.{m}", [f"pipeline/{m}.py"]) for m in MODULES],
    compiler_directives={"language_level": 3, "annotation_typing": False},
    quiet=True,
)
for ext in EXTENSIONS:
    ext.optional = True  # a failed compile (no C compiler) skips the module: its .py is installed anyway
setup(ext_modules=EXTENSIONS)
