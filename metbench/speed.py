"""Speed figures of the harness itself, as functions that asv benchmarks and ``metbench bench``
share: scoring time with bootstrap, and an estimator's throughput against a bare NumPy sum."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from metbench.events import EventBatch
from metbench.scoring.score import CalibrationSample, RecoilSample, Truth, score
from metbench.scoring.throughput import time_call

__all__ = [
    "LatencyScaling",
    "busiest_event",
    "default_sizes",
    "latency_by_candidates",
    "latency_scaling",
    "loading_versus_pyarrow",
    "numpy_sum_met",
    "scoring_extras",
    "scoring_inputs",
    "time_scoring",
    "versus_numpy_sum",
]

_PROCESSES = ("ttbar_2l2nu", "w_lnu", "z_nunu_jets", "z_mumu", "qcd_multijet", "h_zz_4nu")


def scoring_inputs(n_events: int, seed: int = 0) -> tuple[np.ndarray, Truth]:
    """Estimates and truth of ``n_events`` for timing the scoring (only the sizes matter: six
    processes, Z -> mu mu with qT, n_pu ~ Poisson(40), a resolution growing with n_pu)."""
    rng = np.random.default_rng(seed)
    process = np.asarray(_PROCESSES)[rng.integers(0, len(_PROCESSES), n_events)]
    n_pu = rng.poisson(40, n_events)
    t = rng.normal(0, 60, (n_events, 2))
    q = rng.normal(0, 30, (n_events, 2))
    q[process != "z_mumu"] = np.nan
    sigma = np.sqrt(100 + 4 * n_pu)[:, None]
    met = 0.9 * t + rng.normal(0, 1, (n_events, 2)) * sigma
    truth = Truth(
        np.arange(n_events, dtype=np.int64), process, n_pu, (0.7 * n_pu).astype(np.int64),
        t[:, 0], t[:, 1], q[:, 0], q[:, 1],
    )  # fmt: skip
    return met, truth


def scoring_extras(
    met: np.ndarray, truth: Truth, seed: int = 0
) -> tuple[RecoilSample, CalibrationSample]:
    """The recoil task (the Z -> mu mu events, an estimate balancing 90% of qT) and a validation
    sample a quarter of the size, for timing the whole scoring."""
    rng = np.random.default_rng(seed + 1)
    z = np.flatnonzero(np.isfinite(truth.gen_qt_x))
    qt = np.stack([truth.gen_qt_x[z], truth.gen_qt_y[z]], 1)
    recoil = RecoilSample(z, 0.9 * qt + rng.normal(0, 15, qt.shape), qt)
    m = len(met) // 4
    t = np.stack([truth.gen_met_x[:m], truth.gen_met_y[:m]], 1)
    calibration = CalibrationSample(met[:m], t, recoil.estimate[: m // 6], qt[: m // 6])
    return recoil, calibration


def time_scoring(n_events: int = 1_000_000, n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """Wall-clock seconds of :func:`metbench.scoring.score` on ``n_events`` with ``n_boot``
    resamples, every task (MET, fake MET, recoil) and the calibrated variant (inputs prepared
    outside the timing)."""
    met, truth = scoring_inputs(n_events, seed)
    recoil, calibration = scoring_extras(met, truth, seed)
    t0 = time.perf_counter()
    score(met, truth, n_boot=n_boot, seed=seed, recoil=recoil, calibration=calibration)
    return {"n_events": n_events, "n_boot": n_boot, "seconds": time.perf_counter() - t0}


def numpy_sum_met(batch: EventBatch) -> np.ndarray:
    """The floor of any candidate-sum MET: ``-sum pT (cos phi, sin phi)`` over the padded axis
    (padded slots have pT = 0), straight on the batch's arrays."""
    pt = batch.particles[:, :, batch.features.index("pt")]
    phi = batch.particles[:, :, batch.features.index("phi")]
    return np.stack([-(pt * np.cos(phi)).sum(1), -(pt * np.sin(phi)).sum(1)], 1)


def versus_numpy_sum(
    estimator: Any, batch: EventBatch, min_duration_s: float = 2.0, rounds: int = 3
) -> dict[str, Any]:
    """Throughput of ``estimator.predict`` and of :func:`numpy_sum_met` on the same batch,
    measured alternately in one process; the ratio of their median latencies."""
    est, ref = [], []
    for _ in range(rounds):
        est.append(
            np.median(time_call(lambda: estimator.predict(batch), min_duration_s / rounds, 3))
        )
        ref.append(np.median(time_call(lambda: numpy_sum_met(batch), min_duration_s / rounds, 3)))
    t_est, t_ref = float(np.median(est)), float(np.median(ref))
    return {
        "batch_size": len(batch),
        "estimator_events_per_s": len(batch) / t_est,
        "numpy_sum_events_per_s": len(batch) / t_ref,
        "time_ratio": t_est / t_ref,
    }


def latency_by_candidates(
    estimator: Any,
    event: EventBatch,
    sizes: list[int],
    min_duration_s: float = 1.0,
    min_calls: int = 5,
) -> list[dict[str, float]]:
    """Per-event latency at batch 1 as a function of the number of candidates N.

    The event keeps its ``N`` hardest candidates (``event`` must have at least ``max(sizes)``);
    each size is timed after one warm-up call.

    Returns
    -------
    list
        Per size: ``n_candidates``, ``median_ms``, ``p90_ms`` and ``us_per_candidate``.
    """
    if len(event) != 1:
        raise ValueError(f"one event expected, got {len(event)}")
    available = int(event.mask.sum())
    if max(sizes) > available:
        raise ValueError(f"the event has {available} candidates, fewer than {max(sizes)}")
    out = []
    for n in sizes:
        truncated = event.hardest(n)
        estimator.predict(truncated)  # warm-up
        times = time_call(partial(estimator.predict, truncated), min_duration_s, min_calls)
        median = float(np.median(times))
        out.append(
            {
                "n_candidates": n,
                "median_ms": 1e3 * median,
                "p90_ms": 1e3 * float(np.percentile(times, 90)),
                "us_per_candidate": 1e6 * median / n,
            }
        )
    return out


def busiest_event(folder: Path, split: str, max_particles: int) -> EventBatch | None:
    """The event of ``split`` with the most candidates (first of equals), as an estimator sees it
    (no truth); ``None`` for an empty split."""
    from metbench.data.source import EventSource

    busiest = None
    for batch in EventSource(folder, split, batch_size=256, max_particles=max_particles):
        i = int(np.argmax(batch.mask.sum(1)))
        if busiest is None or batch.mask[i].sum() > busiest.mask.sum():
            busiest = batch.take(slice(i, i + 1)).for_estimator()
    return busiest


def default_sizes(n_max: int) -> list[int]:
    """Candidate counts timed by default: 1/8, 1/4, 1/2 and all of ``n_max``."""
    return sorted({max(n_max // k, 1) for k in (8, 4, 2, 1)})


@dataclass(frozen=True)
class LatencyScaling:
    """Latency at batch 1 against the number of candidates N, with a straight-line fit.

    Attributes
    ----------
    rows
        :func:`latency_by_candidates`'s rows.
    intercept_ms, slope_ms
        ``median_ms ≈ intercept_ms + slope_ms × N`` (least squares).
    """

    rows: list[dict[str, float]]
    intercept_ms: float
    slope_ms: float

    @property
    def latency_ratio(self) -> float:
        """Median latency at the largest N over that at the smallest."""
        return self.rows[-1]["median_ms"] / self.rows[0]["median_ms"]

    @property
    def size_ratio(self) -> float:
        """Largest N over smallest N."""
        return self.rows[-1]["n_candidates"] / self.rows[0]["n_candidates"]


def latency_scaling(
    estimator: Any, event: EventBatch, sizes: list[int], min_duration_s: float = 1.0
) -> LatencyScaling:
    """:func:`latency_by_candidates` at ``sizes`` (sorted) and its straight-line fit."""
    rows = latency_by_candidates(estimator, event, sorted(sizes), min_duration_s)
    n = np.array([r["n_candidates"] for r in rows], dtype=float)
    ms = np.array([r["median_ms"] for r in rows])
    if len(rows) > 1:
        slope, intercept = np.polyfit(n, ms, 1)
    else:
        slope, intercept = 0.0, ms[0]
    return LatencyScaling(rows, float(intercept), float(slope))


def loading_versus_pyarrow(
    folder: Path | str, split: str = "test", batch_size: int = 1024, repeats: int = 3
) -> dict[str, Any]:
    """The loader's throughput (:class:`~metbench.data.source.EventSource`: padded batches with
    their jagged view, checksums not verified, as a submission's child reads its input) against a
    plain ``pyarrow.parquet.read_table`` of the same files and columns, best of ``repeats`` each,
    measured alternately in one process.

    Returns
    -------
    dict
        ``n_events``, ``source_s``, ``pyarrow_s`` (seconds for the whole split),
        ``source_events_per_s``, ``pyarrow_events_per_s`` and ``ratio`` (loader / pyarrow
        throughput; 1 would be as fast as the bare read).
    """
    import pyarrow.parquet as pq

    from metbench.data.source import EventSource

    source = EventSource(folder, split, batch_size=batch_size, truth=(), verify=False)
    paths = [source.folder / f for f in source.files]
    columns = pq.ParquetFile(paths[0]).schema_arrow.names

    def load() -> int:
        return sum(len(batch) for batch in source)

    def bare() -> int:
        return sum(pq.read_table(p, columns=columns).num_rows for p in paths)

    best = {"source": np.inf, "pyarrow": np.inf}
    n = 0
    for _ in range(repeats):
        for name, fn in (("source", load), ("pyarrow", bare)):
            start = time.perf_counter()
            n = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        "n_events": n,
        "source_s": best["source"],
        "pyarrow_s": best["pyarrow"],
        "source_events_per_s": n / best["source"],
        "pyarrow_events_per_s": n / best["pyarrow"],
        "ratio": best["pyarrow"] / best["source"],
    }
