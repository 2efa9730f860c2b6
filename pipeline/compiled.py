"""The compiled detection core: which modules ``setup.py`` builds with Cython, and whether the
running ones are those builds, up to date with their source.

The modules below are compiled from their unchanged Python source (Cython, pure-Python mode,
annotations not used as C types), with the C types of an augmenting ``.pxd`` beside a module
where there is one: the account as an extension type with C fields (``account.pxd``), the typed
hot path (``counting.pxd``) and kernels (``features.pxd``, ``sketches.pxd``, ``topk.pxd``), only where C
computes the same values, bit for bit. So they behave exactly as the ``.py`` files do — the test suite and
``scripts/output_digest.py`` check it — and run the offline core faster (``scripts/compiled_ab.py``
measures it against the source, or with ``--baseline`` against another checkout). Without a C
compiler the build installs them uncompiled and everything still works, only slower: ``status``
tells which (the worker logs it, ``bench`` records it).

A compiled module is imported before its ``.py`` beside it, so in an editable checkout an edited
source would not run until rebuilt. The build records a SHA-256 of every source it compiled;
``check_fresh`` (called by the CLI before any command) refuses to run a stale build.

>>> "engine" in MODULES and "worker" not in MODULES
True
"""

from __future__ import annotations

import hashlib
import importlib
import json
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import TypeVar

from pipeline.errors import DistillWatchError

_C = TypeVar("_C", bound=type)


class NoCython:
    """Cython's class directives where Cython is not installed (the core then runs uncompiled):
    each leaves the class as it is, as Cython's own ``cython`` module does when not compiling.

    >>> NoCython.no_gc(NoCython.cclass(int)) is int
    True
    """

    @staticmethod
    def no_gc(cls: _C) -> _C:
        """Compiled: the extension type is not tracked by the cyclic GC (no 16-byte GC header)."""
        return cls

    @staticmethod
    def cclass(cls: _C) -> _C:
        """Compiled: the class is an extension type (its C fields in the module's ``.pxd``)."""
        return cls


# The hot path of ``evaluate`` and the worker: decode, engine, state, features, scoring, alerts,
# clusters. Kafka, Faust and ClickHouse adapters stay interpreted (their time is in C libraries).
MODULES = (
    "account",
    "alerts",
    "changelog",
    "clusters",
    "cold",
    "contract",
    "counting",
    "detection",
    "engine",
    "features",
    "linking",
    "offline",
    "records",
    "scoring",
    "shard",
    "sketches",
    "topk",
    "validation",
    "verdicts",
)
SOURCES_FILE = "compiled-sources.json"  # written by setup.py beside the modules: {module: sha256}
PACKAGE_DIR = Path(__file__).resolve().parent


class StaleBuild(DistillWatchError):
    """A compiled module no longer matches its source (an editable checkout edited after the build)."""


def source_digest(path: Path) -> str:
    """SHA-256 (hex) of one module's source: its .py, then its .pxd when it has one."""
    h = hashlib.sha256(path.read_bytes())
    pxd = path.with_suffix(".pxd")  # the C types of its compiled build (setup.py hashes the same way)
    if pxd.exists():
        h.update(pxd.read_bytes())
    return h.hexdigest()


def status() -> dict[str, bool]:
    """For each module of ``MODULES``: is the imported module the compiled one?"""
    return {m: _is_extension(importlib.import_module(f"pipeline.{m}").__file__ or "") for m in MODULES}


def stale(package_dir: Path | None = None) -> list[str]:
    """Modules compiled in ``package_dir`` (default: this package) whose source changed since the
    build; none when nothing is compiled."""
    package_dir = package_dir or PACKAGE_DIR
    built = [m for m in MODULES if any((package_dir / f"{m}{s}").exists() for s in EXTENSION_SUFFIXES)]
    if not built:
        return []
    try:
        recorded = json.loads((package_dir / SOURCES_FILE).read_text())
    except (OSError, ValueError):
        return built  # compiled modules without a record of their sources: treat all as stale
    sources = {m: package_dir / f"{m}.py" for m in built}
    return [m for m, src in sources.items() if src.exists() and recorded.get(m) != source_digest(src)]


def check_fresh(package_dir: Path | None = None) -> None:
    """Raise ``StaleBuild`` naming the stale modules and the command that rebuilds them."""
    changed = stale(package_dir)
    if changed:
        raise StaleBuild(
            f"the compiled core is older than its source ({', '.join(changed)}): "
            "rebuild it with `python3 -m pip install -e .` (or reinstall the package)"
        )


def summary() -> str:
    """One line for logs and reports, e.g. ``19/19 core modules compiled``."""
    done = status()
    return f"{sum(done.values())}/{len(done)} core modules compiled"


def _is_extension(filename: str) -> bool:
    return any(filename.endswith(s) for s in EXTENSION_SUFFIXES)
