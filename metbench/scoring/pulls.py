"""How well an estimator's per-event covariance describes its errors, in bins: the pull widths,
coverages and kurtosis of :mod:`metbench.scoring.metrics` per decile of the predicted resolution,
per process or in bins of the true |MET| (``metbench show RESULTS --task covariance --bins
sigma|process|truth``), with the median error along the true MET.

The pooled figures (``scores["covariance"]`` of a results file) can be right on average and wrong
everywhere: a covariance too large for one process and too small for another gives a pooled width
near 1 with a 1-sigma coverage above 68 %. These tables say where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from metbench.errors import MetbenchError
from metbench.scoring.binning import edge_binning
from metbench.scoring.metrics import (
    components,
    pull_figures,
    pull_kurtosis,
    whitened_residuals,
)

__all__ = [
    "PULL_BINNINGS",
    "PULL_TRUTH_EDGES",
    "predicted_sigma",
    "pulls_in_bins",
    "pulls_of_results",
]

#: The binnings of :func:`pulls_in_bins`.
PULL_BINNINGS: Final[tuple[str, ...]] = ("sigma", "process", "truth")
#: Bins of the true |MET| [GeV] of ``by="truth"`` (the last open). Unlike the headline's bins
#: they start at 0: a covariance is used most where there are no invisible particles.
PULL_TRUTH_EDGES: Final[tuple[float, ...]] = (0, 10, 20, 30, 60, 120, 200)


def predicted_sigma(cov: np.ndarray) -> np.ndarray:
    """``det(cov)^(1/4)`` [GeV] of ``(n, 2, 2)`` covariances [GeV^2]: the geometric mean of the
    resolution ellipse's two semi-axes, one number per event."""
    cov = np.asarray(cov, dtype=np.float64)
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]
    return np.asarray(np.sqrt(np.sqrt(det)))


def pulls_in_bins(
    e: np.ndarray,
    t: np.ndarray,
    cov: np.ndarray,
    process: np.ndarray,
    by: str = "sigma",
    n_bins: int = 10,
    dof: np.ndarray | None = None,
) -> pd.DataFrame:
    """The covariance's calibration per bin.

    Parameters
    ----------
    e, t
        ``(n, 2)`` estimate and truth [GeV].
    cov
        ``(n, 2, 2)`` the estimate's covariance [GeV^2].
    process
        ``(n,)`` process names.
    by
        ``sigma``: ``n_bins`` quantile bins of :func:`predicted_sigma` (equal numbers of events);
        ``process``: one row per process; ``truth``: bins of the true |MET|
        (:data:`PULL_TRUTH_EDGES`).
    dof
        ``(n,)`` degrees of freedom of a Student t error model with ``cov``, or None: Gaussian
        (:func:`metbench.scoring.metrics.whitened_residuals`).

    Returns
    -------
    DataFrame
        One row per bin (index: the bin's label), columns ``n``, ``sigma`` (the median predicted
        sigma [GeV]), ``pull_width_1``, ``pull_width_2``, ``coverage_1sigma``, ``coverage_2sigma``
        (:func:`metbench.scoring.metrics.pull_figures`), ``pull_kurtosis`` and
        ``error_parallel``: the median of ``(e - t) . t / |t|`` [GeV], the error along the true
        MET (over the bin's events with ``|t| > 0``; negative where the estimate falls short of
        the truth, which a covariance centred on the estimate does not describe).
    """
    if by not in PULL_BINNINGS:
        raise MetbenchError(f"bins of the covariance task: {', '.join(PULL_BINNINGS)}, not {by!r}")
    z, chi2 = whitened_residuals(e, t, cov, dof)
    sigma = predicted_sigma(cov)
    process = np.asarray(process).astype(str)
    c = components(e[:, 0], e[:, 1], t[:, 0], t[:, 1])
    t_mag, along = c.truth, c.par - c.truth  # the error along t_hat
    real = t_mag > 0  # t_hat is defined
    groups: list[tuple[str, np.ndarray]] = []
    if by == "process":
        groups = [(name, process == name) for name in sorted(set(process))]
    elif by == "truth":
        binning = edge_binning("truth", t_mag, PULL_TRUTH_EDGES)
        groups = [
            (f"|t| {label} GeV", binning.index == k) for k, label in enumerate(binning.labels)
        ]
    else:
        edges = np.quantile(sigma, np.linspace(0.0, 1.0, n_bins + 1))
        index = np.clip(np.searchsorted(edges, sigma, side="right") - 1, 0, n_bins - 1)
        for k in range(n_bins):
            groups.append((f"{edges[k]:.1f}-{edges[k + 1]:.1f} GeV", index == k))
    rows: dict[str, dict[str, Any]] = {}
    for label, sel in groups:
        if sel.sum() < 2:
            continue
        rows[label] = {
            "n": int(sel.sum()),
            "sigma": float(np.median(sigma[sel])),
            **pull_figures(z[sel], chi2[sel]),
            "pull_kurtosis": pull_kurtosis(z[sel]),
            "error_parallel": (
                float(np.median(along[sel & real])) if (sel & real).any() else float("nan")
            ),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def pulls_of_results(
    path: Path,
    by: str = "sigma",
    n_bins: int = 10,
    dataset: Path | str | None = None,
    document: dict[str, Any] | None = None,
) -> pd.DataFrame | None:
    """:func:`pulls_in_bins` of a results file, from its predictions (checked as ``metbench
    verify`` checks them: present, sha256, identity) and its dataset's truth (found as
    ``metbench verify`` finds it); ``None`` when its entry gives no covariance. ``document``:
    the file as :func:`metbench.results.read_results` read it already (else it is read)."""
    from metbench.estimators.predictions import read_predictions
    from metbench.results import read_results
    from metbench.scoring.score import align_predictions, load_truth
    from metbench.verify import check_predictions, find_dataset

    results = read_results(path) if document is None else document
    if "covariance" not in results["scores"]:
        return None
    predictions, problems = check_predictions(Path(path), results)
    if predictions is None or problems:
        raise MetbenchError(f"{path}: {problems[0]}; run metbench verify")
    folder, problem = find_dataset(results, dataset)
    if folder is None:
        raise MetbenchError(f"{path}: {problem}; give its folder in $METBENCH_DATA")
    pred = read_predictions(predictions)
    if pred.covariance is None:
        raise MetbenchError(f"{path}: {predictions.name} has no covariance columns")
    truth = load_truth(folder, results["dataset"]["split"])
    index = align_predictions(pred.event_id, truth, str(predictions))
    t = np.stack([truth.gen_met_x, truth.gen_met_y], 1).astype(np.float64)
    dof = pred.dof[index] if pred.dof is not None else None
    return pulls_in_bins(
        pred.met[index], t, pred.covariance[index], truth.process, by=by, n_bins=n_bins, dof=dof
    )
