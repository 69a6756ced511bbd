"""Scoring: predictions and truth in, every figure with its bootstrap interval out.

:func:`score` is the one scoring implementation; ``metbench score``, ``metbench run``, the
leaderboard and the asv benchmarks all call it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from metbench.errors import MetbenchError
from metbench.scoring.binning import (
    CMS_QT_EDGES,
    Binning,
    category_binning,
    edge_binning,
    quantile_edges,
)
from metbench.scoring.bootstrap import (
    DEFAULT_N_BOOT,
    GroupedSample,
    grouped_statistics,
    poisson_counts,
)
from metbench.scoring.metrics import (
    FIGURES,
    components,
    covariance_figures,
    figures_from_stats,
    pileup_fit,
    sums_and_quantiles,
)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "HEADLINE",
    "NO_INVISIBLE_PROCESSES",
    "RECOIL_PROCESSES",
    "ScoringError",
    "Truth",
    "align_predictions",
    "load_truth",
    "n_pu_bins",
    "rank_with_ties",
    "score",
]

#: The figure the leaderboard ranks by: (task, figure).
HEADLINE: Final[tuple[str, str]] = ("met", "sigma_perp_over_r")
#: Central confidence level of every interval.
DEFAULT_CONFIDENCE: Final[float] = 0.95
#: Processes scored in the recoil task (hadronic recoil against the boson qT).
RECOIL_PROCESSES: Final[tuple[str, ...]] = ("z_mumu",)
#: Processes without invisible particles from the hard scatter (for the significance figures).
NO_INVISIBLE_PROCESSES: Final[tuple[str, ...]] = ("z_mumu", "qcd_multijet")


class ScoringError(MetbenchError):
    """Predictions that cannot be scored against the truth."""


@dataclass(frozen=True)
class Truth:
    """Event-level truth of a dataset split (each array ``(n,)``).

    Attributes
    ----------
    event_id, process, n_pu, n_pv
        Identity, process name, true pileup interactions, reconstructed vertices.
    gen_met_x, gen_met_y
        Generator MET [GeV].
    gen_qt_x, gen_qt_y
        Boson transverse momentum [GeV] (NaN where undefined).
    """

    event_id: np.ndarray
    process: np.ndarray
    n_pu: np.ndarray
    n_pv: np.ndarray
    gen_met_x: np.ndarray
    gen_met_y: np.ndarray
    gen_qt_x: np.ndarray
    gen_qt_y: np.ndarray

    def __len__(self) -> int:
        return len(self.event_id)

    def take(self, index: np.ndarray) -> Truth:
        """The truth of a subset of events."""
        return Truth(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def load_truth(folder: Path | str, split: str = "test") -> Truth:
    """Read the event-level truth of a split (checksums verified)."""
    import awkward as ak

    from metbench.data.source import EventSource

    names = list(Truth.__dataclass_fields__)
    source = EventSource(folder, split)
    origin = source.manifest.get("source")
    if origin is not None and not origin.get("has_truth_met", True):
        raise ScoringError(
            f"{origin['file']}: the file has no truth MET; its predictions can be made "
            "(`metbench predict`) but not scored"
        )
    parts = list(source.iter_files(names))
    if not parts:
        raise ScoringError(f"{folder}: split {split!r} has no events to score")
    arr = ak.concatenate(parts) if len(parts) > 1 else parts[0]
    cols = {k: ak.to_numpy(arr[k]) for k in names}
    cols["process"] = cols["process"].astype(str)
    return Truth(**cols)


def align_predictions(pred_event_id: np.ndarray, truth: Truth, where: str) -> np.ndarray:
    """Index into the predictions for each truth event; every event exactly once or an error."""
    pred_event_id = np.asarray(pred_event_id, dtype=np.int64)
    uniq, counts = np.unique(pred_event_id, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1]
        raise ScoringError(
            f"{where}: {len(dup)} event_id(s) predicted more than once (e.g. {dup[0]}); "
            "give one row per event"
        )
    order = np.argsort(pred_event_id)
    pos = np.searchsorted(pred_event_id[order], truth.event_id)
    pos = np.minimum(pos, len(order) - 1) if len(order) else pos
    found = len(order) > 0
    hit = (pred_event_id[order][pos] == truth.event_id) if found else np.zeros(len(truth), bool)
    if not hit.all():
        missing = truth.event_id[~hit]
        raise ScoringError(
            f"{where}: {len(missing)} of {len(truth)} events have no prediction (e.g. event_id "
            f"{missing[0]}); predict the whole split"
        )
    if len(pred_event_id) != len(truth):
        raise ScoringError(
            f"{where}: {len(pred_event_id) - len(truth)} predicted event_id(s) are not in the "
            "dataset split being scored; were the predictions made on another dataset?"
        )
    return np.asarray(order[pos])


def n_pu_bins(n_events: int) -> int:
    """Number of quantile bins of n_pu and n_pv: 5 below 10k events, else 10."""
    return 5 if n_events < 10_000 else 10


def _interval(point: np.ndarray, boot: np.ndarray | None, confidence: float) -> dict[str, Any]:
    def clean(a: np.ndarray) -> Any:
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 0:
            return float(a) if np.isfinite(a) else None
        return [float(v) if np.isfinite(v) else None for v in a]

    out: dict[str, Any] = {"value": clean(point)}
    if boot is not None:
        alpha = (1 - confidence) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins stay NaN
            low, high = np.nanquantile(boot, [alpha, 1 - alpha], axis=0)
        out["low"], out["high"] = clean(low), clean(high)
    return out


def _score_task(
    e: np.ndarray,
    t: np.ndarray,
    truth: Truth,
    with_process: bool,
    n_boot: int,
    seed: int,
    confidence: float,
) -> dict[str, Any]:
    c = components(e[:, 0], e[:, 1], t[:, 0], t[:, 1])
    sums, quants = sums_and_quantiles(c, truth.n_pu)
    n = len(truth)
    n_bins = n_pu_bins(n)
    binnings: list[Binning] = [
        Binning("overall", ("all",), np.zeros(n, dtype=np.int64)),
        edge_binning("truth", c.truth, CMS_QT_EDGES),
        edge_binning("n_pu", truth.n_pu, quantile_edges(truth.n_pu, n_bins)),
        edge_binning("n_pv", truth.n_pv, quantile_edges(truth.n_pv, n_bins)),
    ]
    if with_process:
        binnings.append(category_binning("process", truth.process))
    result: dict[str, Any] = {"n_events": n, "bins": {}}
    orders = {k: np.argsort(v, kind="stable") for k, v in quants.items()}
    # one draw of multiplicities serves every binning (each binning is its own bootstrap)
    counts = poisson_counts(np.random.default_rng(seed), (n_boot, n)) if n_boot else None
    for binning in binnings:
        sample = GroupedSample(binning.index, len(binning), sums, quants, orders=orders)
        point, boot = grouped_statistics(sample, n_boot, counts=counts)
        fig_point = figures_from_stats(point)
        fig_boot = figures_from_stats(boot) if boot is not None else None
        figures = {
            name: _interval(
                fig_point[name], fig_boot[name] if fig_boot is not None else None, confidence
            )
            for name in FIGURES
        }
        if binning.name == "overall":
            result["overall"] = {name: _squeeze(v) for name, v in figures.items()}
            continue
        entry: dict[str, Any] = {"labels": list(binning.labels), "figures": figures}
        if binning.edges is not None:
            entry["edges"] = [float(x) if np.isfinite(x) else None for x in binning.edges]
        result["bins"][binning.name] = entry
        if binning.name == "n_pu":
            with np.errstate(divide="ignore", invalid="ignore"):
                mean_n_pu = point["n_pu"] / point["n"]
            fit: dict[str, Any] = {}
            for axis in ("par", "perp"):
                key = f"sigma_{axis}"
                a, b = pileup_fit(mean_n_pu, fig_point[key], point["n"])
                a_boot = b_boot = None
                if boot is not None and fig_boot is not None:
                    a_boot, b_boot = pileup_fit(
                        mean_n_pu, fig_boot[key], point["n"], weight_sigma=fig_point[key]
                    )
                fit[axis] = {
                    "a": _interval(a, a_boot, confidence),
                    "b": _interval(b, b_boot, confidence),
                }
            result["pileup_fit"] = fit
    return result


def _squeeze(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in entry.items()}


def score(
    met: np.ndarray,
    truth: Truth,
    covariance: np.ndarray | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, Any]:
    """Score MET estimates against the truth.

    Parameters
    ----------
    met
        ``(n, 2)`` estimated MET (px, py) [GeV], aligned with ``truth``.
    truth
        The events' truth.
    covariance
        Optional ``(n, 2, 2)`` covariance of each estimate [GeV^2].
    n_boot
        Bootstrap resamples per interval (0: none).
    seed
        Bootstrap seed (the same inputs and seed give identical results).
    confidence
        Central confidence level of the intervals.

    Returns
    -------
    dict
        JSON-ready: ``tasks.met`` (against generator MET, all events) and, where the split has
        any, ``tasks.recoil`` (Z -> mu mu hadronic recoil against qT). Each task has ``overall``
        figures, ``bins`` by ``truth`` (|t| or qT, CMS edges), ``n_pu``, ``n_pv`` (quantile bins)
        and ``process``, and ``pileup_fit``. ``covariance`` holds the pull, coverage and
        significance figures when a covariance is given.
    """
    met = np.asarray(met, dtype=np.float64)
    if met.shape != (len(truth), 2):
        raise ScoringError(f"MET estimates have shape {met.shape}, expected ({len(truth)}, 2)")
    if n_boot and n_boot < 200:
        raise ScoringError(f"use at least 200 bootstrap resamples (got {n_boot}) or none")
    t_met = np.stack([truth.gen_met_x, truth.gen_met_y], 1).astype(np.float64)
    out: dict[str, Any] = {
        "n_events": len(truth),
        "n_boot": n_boot,
        "seed": seed,
        "confidence": confidence,
        "headline": {"task": HEADLINE[0], "figure": HEADLINE[1]},
        "tasks": {"met": _score_task(met, t_met, truth, True, n_boot, seed, confidence)},
    }
    recoil = np.isin(truth.process, RECOIL_PROCESSES) & np.isfinite(truth.gen_qt_x)
    if recoil.any():
        qt = np.stack([truth.gen_qt_x, truth.gen_qt_y], 1).astype(np.float64)[recoil]
        out["tasks"]["recoil"] = _score_task(
            met[recoil] + qt, qt, truth.take(recoil), False, n_boot, seed + 1, confidence
        )
    if covariance is not None:
        has_invisible = ~np.isin(truth.process, NO_INVISIBLE_PROCESSES)
        out["covariance"] = covariance_figures(met, t_met, covariance, has_invisible)
    return out


def rank_with_ties(
    entries: dict[str, tuple[float, float, float]], lower_is_better: bool = True
) -> dict[str, int]:
    """Ranks from ``(value, low, high)``; entries whose intervals overlap share a rank.

    Entries are sorted by value; each one opens a new rank unless its interval overlaps the
    interval of the first entry of the current rank (so a tie group never spans two clearly
    separated entries). Entries without a value come last, tied.
    """
    sign = 1.0 if lower_is_better else -1.0
    finite = {k: v for k, v in entries.items() if v[0] is not None and np.isfinite(v[0])}
    order = sorted(finite, key=lambda k: sign * finite[k][0])
    ranks: dict[str, int] = {}
    leader: tuple[float, float] | None = None
    for position, name in enumerate(order, start=1):
        _, low, high = finite[name]
        if leader is None or not (low <= leader[1] and high >= leader[0]):
            leader = (low, high)
            rank = position
        ranks[name] = rank
    for name in entries:
        ranks.setdefault(name, len(finite) + 1)
    return ranks
