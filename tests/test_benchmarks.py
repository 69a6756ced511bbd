"""Every asv benchmark runs: each ``time_``/``peakmem_``/``track_`` method once per value of its
first parameter (the first value of the others), in this process, on the mini dataset.

asv's own smoke run (``asv run --quick``) starts a process per benchmark and parameter, each
importing TensorFlow and PyTorch anew; this test covers the same code in a fraction of the time,
and ``asv check`` in CI checks that asv discovers the suite.
"""

from __future__ import annotations

import importlib
import inspect
import math
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PREFIXES = ("time_", "peakmem_", "track_")


def _benchmark_classes() -> list[tuple[str, type]]:
    found = []
    for path in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and any(m.startswith(PREFIXES) for m in dir(cls)):
                found.append((f"{path.stem}.{name}", cls))
    return found


def _parameter_sets(cls: type) -> list[tuple[Any, ...]]:
    params = getattr(cls, "params", [])
    if not params:
        return [()]
    if not isinstance(params[0], list | tuple):  # one parameter
        return [(p,) for p in params]
    first, *rest = params
    return [(p, *(r[0] for r in rest)) for p in first]


@pytest.fixture
def mini_for_asv(mini_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The benchmarks find mini as ``$METBENCH_DATA/mini`` (as asv runs them)."""
    monkeypatch.setenv("METBENCH_DATA", str(mini_dataset.parent))
    common = importlib.import_module("benchmarks.common")
    common.mini.cache_clear()
    return mini_dataset


def test_the_suite_is_discovered() -> None:
    names = [name for name, _ in _benchmark_classes()]
    # one class per area the maintainers watch: estimators, inference, physics, scoring, loading
    for expected in ("BaselinePredict", "ReferenceInference", "BaselinePhysics", "Scoring"):
        assert any(n.endswith("." + expected) for n in names), names


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,cls", _benchmark_classes(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_benchmark_runs_once(name: str, cls: type, mini_for_asv: Path) -> None:
    methods = sorted(m for m in dir(cls) if m.startswith(PREFIXES))
    cache = cls().setup_cache() if hasattr(cls, "setup_cache") else None
    for args in _parameter_sets(cls):
        bench = cls()
        lead = () if cache is None else (cache,)
        if hasattr(bench, "setup"):
            bench.setup(*lead, *args)
        try:
            for method in methods:
                value = getattr(bench, method)(*lead, *args)
                if method.startswith("track_"):
                    assert isinstance(value, float | int), (name, method, args, value)
                    assert math.isfinite(value), (name, method, args, value)
        finally:
            if hasattr(bench, "teardown"):
                bench.teardown(*lead, *args)


def test_parameter_sets_cover_the_first_parameter() -> None:
    class Two:
        params = (["a", "b", "c"], [1, 1024])

    class One:
        params = (20.0, 80.0)  # one parameter (asv: a flat list)

    assert _parameter_sets(Two) == [("a", 1), ("b", 1), ("c", 1)]
    assert _parameter_sets(One) == [(20.0,), (80.0,)]
    assert _parameter_sets(type("N", (), {})) == [()]
