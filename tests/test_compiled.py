"""The compiled detection core (setup.py, Cython): it is what runs, it is current, it behaves exactly
as the Python source does, and a stale build is refused with a one-line error."""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import json
import math
import pkgutil
import random
import shutil
import subprocess
import sys
from array import array
from pathlib import Path
from types import ModuleType

import pytest

import pipeline
from pipeline import compiled
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = compiled.EXTENSION_SUFFIXES[0]


def test_the_core_runs_compiled_and_current() -> None:
    """The test command installs a C compiler, so every listed module must be the compiled one."""
    assert compiled.status() == {m: True for m in compiled.MODULES}, compiled.summary()
    assert compiled.stale() == []


def _fake_build(tmp_path: Path, source: str, recorded: str | None) -> Path:
    (tmp_path / "engine.py").write_text(source)
    (tmp_path / f"engine{SUFFIX}").write_bytes(b"")  # only its presence matters to ``stale``
    if recorded is not None:
        (tmp_path / compiled.SOURCES_FILE).write_text(json.dumps({"engine": recorded}))
    return tmp_path


def test_stale_detects_an_edited_source(tmp_path: Path) -> None:
    built = _fake_build(tmp_path, "x = 1\n", None)
    assert compiled.stale(built) == ["engine"]  # compiled, but no record of what from
    (built / compiled.SOURCES_FILE).write_text(json.dumps({"engine": compiled.source_digest(built / "engine.py")}))
    assert compiled.stale(built) == []
    (built / "engine.py").write_text("x = 2\n")
    assert compiled.stale(built) == ["engine"]
    assert compiled.stale(tmp_path / "nothing-compiled") == []


def test_stale_detects_an_edited_pxd(tmp_path: Path) -> None:
    """A module's .pxd (the C types of its build) is part of its source."""
    built = _fake_build(tmp_path, "x = 1\n", None)
    (built / "engine.pxd").write_text("cpdef f(double x)\n")
    (built / compiled.SOURCES_FILE).write_text(json.dumps({"engine": compiled.source_digest(built / "engine.py")}))
    assert compiled.stale(built) == []
    (built / "engine.pxd").write_text("cpdef f(long x)\n")
    assert compiled.stale(built) == ["engine"]


def test_cli_refuses_a_stale_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(compiled, "PACKAGE_DIR", _fake_build(tmp_path, "x = 2\n", "0" * 64))
    assert main(["evaluate", str(tmp_path / "events.jsonl"), "--labels", str(tmp_path / "labels.csv")]) == 2
    err = capsys.readouterr().err
    assert "compiled core is older than its source (engine)" in err and "pip install -e ." in err
    assert "Traceback" not in err


def _docstrings(tree: ast.Module) -> list[tuple[str, str, int]]:
    """(name, docstring, line) of the module and of every class and function in it."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc and ">>>" in doc:
                found.append((getattr(node, "name", "<module>"), doc, getattr(node, "lineno", 1)))
    return found


def test_doctests_pass_on_the_installed_modules() -> None:
    """Every ``>>>`` example in pipeline/, run in the namespace of the module as imported (compiled or
    not). pytest's own doctest collection would import the ``.py`` beside a compiled module instead."""
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    parser = doctest.DocTestParser()
    examples = 0
    for info in pkgutil.iter_modules(pipeline.__path__):
        module = importlib.import_module(f"pipeline.{info.name}")
        source = Path(pipeline.__file__).parent / f"{info.name}.py"
        for name, doc, line in _docstrings(ast.parse(source.read_text())):
            test = parser.get_doctest(doc, dict(vars(module)), f"{info.name}.{name}", str(source), line)
            examples += len(test.examples)
            runner.run(test)
    print(f"{examples} doctest examples run")  # pytest -s shows it
    assert runner.failures == 0
    assert examples >= 60  # the examples exist and were run (68 when written)


def _digest(script: Path) -> str:
    out = subprocess.run(
        [sys.executable, str(script), "--events", "20000", "--accounts", "2000", "--seed", "7"],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    return out.strip().splitlines()[-1]


def test_compiled_and_interpreted_cores_give_identical_outputs(tmp_path: Path) -> None:
    """``scripts/output_digest.py`` (every alert, row and summary, and every account's final state) on the
    compiled package and on a copy of its Python sources alone."""
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("*.so", "*.c"))
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "output_digest.py", tmp_path / "scripts")
    pure = _digest(tmp_path / "scripts" / "output_digest.py")
    assert pure.startswith("sha256 ")
    assert _digest(ROOT / "scripts" / "output_digest.py") == pure


def test_account_state_is_outside_the_cyclic_gc_and_runs_without_cython(tmp_path: Path) -> None:
    """Compiled, the account's extension types carry no GC header and are never walked by a
    collection (``@cython.no_gc``: they hold no reference cycles); on a machine without Cython the
    Python sources still run, their directives left as no-ops (``compiled.NoCython``)."""
    import gc

    from pipeline.account import AccountState

    st = AccountState("a", 0, created_ms=0, first_ms=90_000)
    held = [st, st.bucket, st.ids, st.nov, st.tpl, st.ips, st.asn_ua, st.pays]
    assert [gc.is_tracked(o) for o in held] == [False] * len(held)
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("*.so", "*.c"))
    code = (
        "import sys; sys.modules['cython'] = None\n"  # ``import cython`` raises ImportError
        "from pipeline.account import AccountState\n"
        "st = AccountState('a', 0, created_ms=0, first_ms=90_000); st.tpl.add('t'); st.ips.add('1.2.3.0/24')\n"
        "shim = sys.modules['pipeline.topk'].cython.__name__\n"
        "print(type(st).__module__, AccountState.load(st.dump()).dump() == st.dump(), shim)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["pipeline.account", "True", "NoCython"]


def test_the_event_is_an_extension_type_equal_to_its_source() -> None:
    """Compiled, the request event is an extension type outside the cyclic GC whose fields read back,
    compare and print as the interpreted class's do; a number past 64 bits raises OverflowError
    (validation keeps every valid event inside)."""
    import gc

    from pipeline.contract import Event

    py = _source_module("contract")
    args = ("e1", 1_700_000_000_000, "a", "m", 429, 2**63 - 1, 20)
    kw = dict(latency_ms=12.5, stream=True, asn=64_512, simhash=2**64 - 1, cot=True, tools=3, category="math")
    ev, src = Event(*args, **kw), py.Event(*args, **kw)
    assert type(ev).__module__ == "pipeline.contract" and not gc.is_tracked(ev)
    assert ev.values() == src.values() and repr(ev) == repr(src)
    assert ev == Event(*args, **kw) and ev != Event(*args, **{**kw, "tools": 4})
    with pytest.raises(OverflowError):
        Event("e1", 2**63, "a", "m", 200, 1, 1)


def _source_module(name: str) -> ModuleType:
    """``pipeline.<name>`` loaded from its .py alone (the compiled one is what ``import`` gives)."""
    spec = importlib.util.spec_from_file_location(f"_py_{name}", ROOT / "pipeline" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_typed_kernels_compute_what_their_source_does() -> None:
    """The .pxd-typed kernels (C doubles, 64-bit unsigned products, the sketches' C arrays) against
    their Python source on random and extreme inputs, bit for bit, dumps and loads included: the
    compiled build must never change a value."""
    from pipeline import detection, features, sketches, topk
    from pipeline.features import NF

    py_f, py_s, py_t = _source_module("features"), _source_module("sketches"), _source_module("topk")
    rnd = random.Random(11)
    c_nov, p_nov = sketches.SimhashNovelty(), py_s.SimhashNovelty()
    last = 0
    for i in range(50_000):
        h = rnd.choice((rnd.getrandbits(64), last ^ (1 << rnd.randrange(64)), 0, 2**64 - 1, last))
        assert c_nov.observe(h) == p_nov.observe(h), (i, h)
        assert py_s._popcount(h ^ last) == (h ^ last).bit_count()
        last = h
        if i % 4_999 == 0:  # a state in C arrays survives its dump (a thawed account)
            assert c_nov.dump() == p_nov.dump(), i
            c_nov = sketches.SimhashNovelty.load(c_nov.dump())
    assert c_nov.dump() == p_nov.dump()
    for k in (1, 4, 8):  # the distinct sketch's C array of hashes: the same estimates and dumps
        c_d, p_d = topk.DistinctSketch(k, 2), py_t.DistinctSketch(k, 2)
        for i in range(3_000):
            value = f"v{rnd.randrange(400)}"
            c_d.add(value)
            p_d.add(value)
            assert c_d.estimate() == p_d.estimate() and c_d.dump() == p_d.dump(), (k, i)
            if i % 997 == 0:
                c_d = topk.DistinctSketch.load(c_d.dump())
    c_h, p_h = topk.HeavyHitters(6), py_t.HeavyHitters(6)  # the top-k counts in a C array
    for i in range(20_000):
        r, key = rnd.random(), f"t{rnd.randrange(rnd.choice((3, 12)))}"
        for h in (c_h, p_h):
            if r < 0.02:
                h.decay(0.5)
            elif r < 0.05:
                h.total += 1
            else:
                h.add(key)
        assert c_h.dump() == p_h.dump() and c_h.top(3) == p_h.top(3), i
        assert c_h.concentration() == p_h.concentration() and c_h.coverage(3) == p_h.coverage(3), i
        n = 1 + i % 8  # the top n counts, largest first: what ``sum`` over the sorted counts gives
        top = sum(sorted(c_h.counts().values(), reverse=True)[:n])
        assert c_h.coverage(n) == (top / c_h.total if c_h.total else 0.0), i
        assert c_h.top(n) == [k for k, _ in sorted(c_h.counts().items(), key=lambda kv: (-kv[1], kv[0]))[:n]], i
        if i % 997 == 0:
            c_h = topk.HeavyHitters.load(c_h.dump())
    for size in (4, 16):  # the event-id ring: in a C array up to SMALL ids, then grown past it
        c_r, p_r = sketches.RecentIds(size), py_s.RecentIds(size)
        ts = 0
        for i in range(20_000):
            ts += rnd.choice((1, 50, 400, 20_000, 600_000)) if i % 500 < 400 else 0
            h = rnd.randrange(1, rnd.choice((40, 2**32)))
            assert c_r.seen_or_add(h, ts) == p_r.seen_or_add(h, ts), (size, i)
            assert c_r.dump() == p_r.dump(), (size, i)
            if i % 997 == 0:
                c_r = sketches.RecentIds.load(c_r.dump())
        assert c_r.n == sketches.RecentIds.MAX  # it grew past the C array
    for sketch, name in ((c_h, "k"), (c_d, "k"), (c_r, "n"), (c_r, "pos")):  # what bounds the loops
        with pytest.raises(AttributeError):  # over (or indexes) a C array cannot be set from outside
            setattr(sketch, name, 64)
    for _ in range(5_000):
        n = rnd.randint(0, 26)
        counts = [rnd.choice((0, 0.0, rnd.random(), rnd.random() * 1e6, rnd.randint(0, 50))) for _ in range(n)]
        assert topk.entropy(counts) == py_t.entropy(counts), counts
        off = rnd.randint(0, 3)  # the vector at an offset inside a longer accumulator array
        acc = array("f", (rnd.uniform(-1e6, 1e6) for _ in range(n + off + rnd.randint(0, 3))))
        v = array("d", [rnd.choice((0, rnd.randint(0, 2**40), rnd.random() * 1e3)) for _ in range(n)])
        d = rnd.choice((1.0, 0.0, rnd.random(), math.exp(-rnd.randint(0, 10**7) / 900_000)))
        c_acc, p_acc = array("f", acc), array("f", acc)
        features.decay_add(c_acc, off, d, v)
        py_f.decay_add(p_acc, off, d, v)
        assert c_acc.tobytes() == p_acc.tobytes()
    with pytest.raises(IndexError):  # bounds-checked: a vector past the accumulators' end is refused
        features.decay_add(array("f", [0.0] * 3), 1, 1.0, array("d", [1.0] * 3))
    py_d = _source_module("detection")  # the scoring rule in C doubles (detection.pxd)
    for _ in range(20_000):
        f = [rnd.choice((0.0, rnd.random(), rnd.uniform(0, 50), rnd.expovariate(1e-3), 1e-300)) for _ in range(NF)]
        old, hst, bias = rnd.random() < 0.5, rnd.choice((0.0, rnd.random())), rnd.uniform(-8, 0)
        ev = detection.evidence(f, old, hst)
        assert ev == py_d.evidence(f, old, hst), f
        assert detection.combine(ev, 0.0, bias) == py_d.combine(ev, 0.0, bias), ev
        contrib = [rnd.choice((0.0, -0.0, -1.0, 1.0, rnd.random(), rnd.uniform(-2, 2))) for _ in range(11)]
        n = rnd.randint(0, 12)  # the reasons: a stable sort by descending contribution, cut at the first <= 0
        by_sort = []
        for k in sorted(range(len(contrib)), key=lambda i: -contrib[i])[:n]:
            if contrib[k] <= 0:
                break
            by_sort.append(k)
        assert detection.ranked(contrib, n) == by_sort == py_d.ranked(contrib, n), contrib
        a = rnd.choice((0.02, 0.05, rnd.random()))
        x = [rnd.uniform(0, 50) for _ in range(NF)]
        assert detection.faded(f, x, a) == [p + a * (v - p) for p, v in zip(f, x, strict=True)]
        c_acc = array("f", (rnd.uniform(0, 100) for _ in range(3 + NF)))
        p_acc = array("f", c_acc)
        detection.fade_into(c_acc, 3, x, a)
        py_d.fade_into(p_acc, 3, x, a)
        assert c_acc.tobytes() == p_acc.tobytes()
    with pytest.raises(ValueError):  # one weight a term
        detection.combine([0.0] * 3, 0.0)
    with pytest.raises(ValueError):  # positions are bits of one 64-bit integer
        detection.ranked([1.0] * 64, 3)
    with pytest.raises(ValueError):  # one value a mean
        detection.faded([0.0] * 3, [1.0] * 4, 0.5)


def test_extension_type_accounts_fold_and_keep_what_the_source_does() -> None:
    """``AccountState`` with C fields (account.pxd) and the typed ``fold`` (features.pxd) against the
    Python source on random minute rolls, gaps of a minute to days (the 24-hour and 48-slot masks
    shift out entirely): the dumps agree after every roll, and a value past 64 bits (32 for the
    narrow fields) is refused."""
    from pipeline import features
    from pipeline.account import COT, EV, NV, SLOT_MS, AccountState, MinuteBucket
    from pipeline.contract import MAX_TS_MS

    py_f = _source_module("features")
    rnd = random.Random(5)
    first = 1_700_000_000_000 + rnd.randrange(3_600_000)
    c_st, p_st = AccountState("a", 0, 0, first), AccountState("a", 0, 0, first)
    minute = first - first % 60_000
    for i in range(3_000):
        minute += 60_000 * rnd.choice((1, 1, 2, 5, 47, 48, 49, 60, 61, 600, 1_439, 1_440, 1_441, 5_000))
        v = [rnd.choice((0, 1, rnd.randint(0, 10**6))) for _ in range(NV)]
        v[COT] = min(v[COT], v[EV])  # a share of the events, as counted
        for st, fold in ((c_st, features.fold), (p_st, py_f.fold)):
            fold(st, minute)
            st.bucket = MinuteBucket("a", minute)
            st.bucket.v = array("d", v)
        assert c_st.dump() == p_st.dump(), i
        if i % 3 == 0:  # the features read from the accumulators (features.pxd), at up to 4 h on
            now = minute + rnd.choice((0, 30_000, 600_000, 14_400_000))
            assert features.feature_vector(c_st, now) == py_f.feature_vector(p_st, now), i
            assert c_st.dump() == p_st.dump(), i  # the dominant-category masks it keeps
    assert c_st.hours and c_st.act_mask < 1 << 48
    with pytest.raises(OverflowError):
        c_st.prev_ts = 1 << 64
    # the 32-bit fields hold the hour and the 5-minute slot of the contract's last timestamp, no more
    c_st.hour_last, c_st.act_slot = (MAX_TS_MS - 1) // 3_600_000, (MAX_TS_MS - 1) // SLOT_MS
    with pytest.raises(OverflowError):
        c_st.act_slot = 1 << 31
