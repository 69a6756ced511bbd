"""Throughput, MLPerf-style: warm-up, then at least a minimum duration and a minimum number of
calls per batch size; events/s, latency percentiles, peak memory, threads, hardware."""

from __future__ import annotations

import functools
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "ThroughputSettings",
    "hardware_info",
    "measure_throughput",
    "time_call",
    "versions",
]

#: Batch sizes measured (1024 where memory allows).
DEFAULT_BATCH_SIZES: Final[tuple[int, ...]] = (1, 64, 1024)


@dataclass(frozen=True)
class ThroughputSettings:
    """How long to measure.

    Attributes
    ----------
    batch_sizes
        Events per call.
    warmup_calls
        Calls before timing starts (JIT, caches, lazy initialisation).
    min_duration_s
        Time each batch size is measured for, at least.
    min_calls
        Calls each batch size is measured for, at least.
    """

    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    warmup_calls: int = 2
    min_duration_s: float = 2.0
    min_calls: int = 5


class _PeakRSS:
    """Samples this process's resident memory every few ms in a thread."""

    def __init__(self, period_s: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self._period = period_s
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self._period)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def time_call(fn: Callable[[], Any], min_duration_s: float, min_calls: int) -> np.ndarray:
    """Latencies [s] of repeated calls of ``fn``, for at least the duration and call count."""
    latencies: list[float] = []
    start = time.perf_counter()
    while len(latencies) < min_calls or time.perf_counter() - start < min_duration_s:
        t0 = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t0)
    return np.asarray(latencies)


def measure_throughput(
    predict: Callable[[Any], Any],
    make_batch: Callable[[int], Any],
    settings: ThroughputSettings = ThroughputSettings(),
    gpu_peak_memory: Callable[[], int | None] | None = None,
    reset_gpu_peak: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure ``predict`` on batches from ``make_batch(size)``, one entry per batch size.

    Each entry: ``batch_size``, ``calls``, ``events_per_s``, ``latency_ms`` (p50, p90, p99 of one
    call), ``peak_rss_mb`` (resident memory of the process during the measurement),
    ``peak_gpu_mb`` (when measured) and ``threads``; or ``skipped`` with the reason, when the
    batch does not fit in memory.
    """
    import psutil

    out: list[dict[str, Any]] = []
    for size in settings.batch_sizes:
        try:
            batch = make_batch(size)
            if reset_gpu_peak is not None:
                reset_gpu_peak()
            with _PeakRSS() as rss:
                for _ in range(settings.warmup_calls):
                    predict(batch)
                lat = time_call(
                    functools.partial(predict, batch), settings.min_duration_s, settings.min_calls
                )
        except MemoryError:
            out.append({"batch_size": size, "skipped": "out of memory"})
            continue
        entry: dict[str, Any] = {
            "batch_size": size,
            "calls": len(lat),
            "events_per_s": float(size * len(lat) / lat.sum()),
            "latency_ms": {f"p{q}": float(np.percentile(lat, q) * 1e3) for q in (50, 90, 99)},
            "peak_rss_mb": rss.peak / 2**20,
            "threads": psutil.Process().num_threads(),
        }
        gpu = gpu_peak_memory() if gpu_peak_memory is not None else None
        if gpu is not None:
            entry["peak_gpu_mb"] = gpu / 2**20
        out.append(entry)
    return out


def hardware_info() -> dict[str, Any]:
    """CPU model, core count, memory, platform and environment thread settings."""
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "thread_env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
            if k in os.environ
        },
    }


def versions(modules: Sequence[str] = ()) -> dict[str, str]:
    """Versions of metbench, numpy and the given modules that are importable."""
    import importlib

    names = ["metbench", "numpy", "awkward", "pyarrow", *modules]
    out = {}
    for name in names:
        try:
            out[name] = str(importlib.import_module(name).__version__)
        except (ImportError, AttributeError):
            continue
    return out
