"""The definitions of metbench's figures of merit: one formula each, used by CLI, site and asv.

Notation: ``e`` is the estimate and ``t`` the truth, both transverse vectors [GeV].

* MET task: ``e`` is the estimated MET, ``t`` the generator MET (sum of invisible particles).
* Recoil task (Z -> mu mu, as in the CMS DeepMET paper): the hadronic recoil is
  ``u = -(MET + qT)``; ``t = qT`` and ``e = -u = MET + qT``, so that ``e_par = -u_par``,
  the recoil response ``-<u_par>/qT`` is ``<e_par>/<|t|>`` and ``e_par - |t| = -(u_par + qT)``.

Per event: ``e_par = e . t_hat`` and ``e_perp = t_hat_x e_y - t_hat_y e_x`` (for ``t = 0``,
``t_hat`` is the x axis). Per group of events:

================  ===================================================================  =======
figure            definition                                                           unit
================  ===================================================================  =======
``n``             events
``mean_truth``    <|t|>                                                                GeV
``response``      R = <e_par> / <|t|> (a ratio of means)
``bias``          <e_par - |t|>                                                        GeV
``sigma_par``     (P84 - P16)/2 of e_par - |t| (the Perceiver study's resolution)      GeV
``sigma_perp``    (P84 - P16)/2 of e_perp                                              GeV
``rms_par``       standard deviation of e_par - |t|                                    GeV
``rms_perp``      standard deviation of e_perp                                         GeV
``sigma_par_over_r``   sigma_par / R (CMS's response-corrected resolution)             GeV
``sigma_perp_over_r``  sigma_perp / R                                                  GeV
``tail_<T>``      fraction of events with ``|e - t| > T`` GeV
================  ===================================================================  =======

Quantiles use NumPy's ``inverted_cdf`` definition. Pileup dependence: the fit
``sigma^2 = a^2 + b^2 n_pu`` over the n_pu bins (see :func:`pileup_fit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from metbench.scoring.bootstrap import quantile_key

__all__ = [
    "CHI2_2DOF_1SIGMA",
    "CHI2_2DOF_2SIGMA",
    "FIGURES",
    "TAIL_THRESHOLDS",
    "Components",
    "components",
    "covariance_figures",
    "figures_from_stats",
    "pileup_fit",
    "roc_auc",
    "sums_and_quantiles",
]

#: Thresholds of the tail fractions [GeV].
TAIL_THRESHOLDS: Final[tuple[float, ...]] = (25.0, 50.0, 100.0)
#: chi^2 (2 degrees of freedom) quantiles at 68.27% and 95.45%: 1 and 2 sigma coverage.
CHI2_2DOF_1SIGMA: Final[float] = float(-2.0 * np.log(1.0 - 0.682689492137086))
CHI2_2DOF_2SIGMA: Final[float] = float(-2.0 * np.log(1.0 - 0.954499736103642))

#: Every figure: (label, unit, lower is better?).
FIGURES: Final[dict[str, tuple[str, str, bool | None]]] = {
    "n": ("events", "", None),
    "mean_truth": ("<|t|>", "GeV", None),
    "response": ("R", "", None),
    "bias": ("bias", "GeV", None),
    "sigma_par": ("σ∥", "GeV", True),
    "sigma_perp": ("σ⊥", "GeV", True),
    "rms_par": ("RMS∥", "GeV", True),
    "rms_perp": ("RMS⊥", "GeV", True),
    "sigma_par_over_r": ("σ∥/R", "GeV", True),
    "sigma_perp_over_r": ("σ⊥/R", "GeV", True),
    **{f"tail_{t:g}": (f"f(|Δ|>{t:g})", "", True) for t in TAIL_THRESHOLDS},
}


@dataclass(frozen=True)
class Components:
    """Per-event projections of an estimate on its truth (all ``(n,)`` float64, GeV)."""

    truth: np.ndarray  # |t|
    par: np.ndarray  # e . t_hat
    perp: np.ndarray  # t_hat x e
    residual: np.ndarray  # |e - t|


def components(e_x: np.ndarray, e_y: np.ndarray, t_x: np.ndarray, t_y: np.ndarray) -> Components:
    """Project estimates ``(e_x, e_y)`` on the truth direction ``(t_x, t_y)`` [GeV]."""
    e_x, e_y, t_x, t_y = (np.asarray(a, dtype=np.float64) for a in (e_x, e_y, t_x, t_y))
    mag = np.hypot(t_x, t_y)
    safe = np.where(mag > 0, mag, 1.0)
    ux = np.where(mag > 0, t_x / safe, 1.0)
    uy = np.where(mag > 0, t_y / safe, 0.0)
    return Components(
        truth=mag,
        par=e_x * ux + e_y * uy,
        perp=ux * e_y - uy * e_x,
        residual=np.hypot(e_x - t_x, e_y - t_y),
    )


def sums_and_quantiles(
    c: Components, n_pu: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The per-event values whose group sums and quantiles :func:`figures_from_stats` needs."""
    d_par = c.par - c.truth
    sums = {
        "n": np.ones_like(c.truth),
        "truth": c.truth,
        "par": c.par,
        "d_par": d_par,
        "d_par2": d_par**2,
        "perp": c.perp,
        "perp2": c.perp**2,
        **{f"tail_{t:g}": (c.residual > t).astype(np.float64) for t in TAIL_THRESHOLDS},
    }
    if n_pu is not None:
        sums["n_pu"] = np.asarray(n_pu, dtype=np.float64)
    return sums, {"d_par": d_par, "perp": c.perp}


def figures_from_stats(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The figures of :data:`FIGURES` from group sums and quantiles (any array shape)."""
    n = stats["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = n >= 2
        mean_d = stats["d_par"] / n
        mean_perp = stats["perp"] / n
        response = stats["par"] / stats["truth"]
        sigma_par = 0.5 * (stats[quantile_key("d_par", 0.84)] - stats[quantile_key("d_par", 0.16)])
        sigma_perp = 0.5 * (stats[quantile_key("perp", 0.84)] - stats[quantile_key("perp", 0.16)])
        out = {
            "n": n,
            "mean_truth": stats["truth"] / n,
            "response": response,
            "bias": mean_d,
            "sigma_par": sigma_par,
            "sigma_perp": sigma_perp,
            "rms_par": np.sqrt(np.maximum(stats["d_par2"] / n - mean_d**2, 0.0)),
            "rms_perp": np.sqrt(np.maximum(stats["perp2"] / n - mean_perp**2, 0.0)),
            "sigma_par_over_r": sigma_par / response,
            "sigma_perp_over_r": sigma_perp / response,
            **{f"tail_{t:g}": stats[f"tail_{t:g}"] / n for t in TAIL_THRESHOLDS},
        }
    for key, value in out.items():
        if key != "n":
            out[key] = np.where(valid, value, np.nan)
    return out


def pileup_fit(
    mean_n_pu: np.ndarray, sigma: np.ndarray, n: np.ndarray, weight_sigma: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``sigma^2 = a^2 + b^2 n_pu`` over n_pu bins by weighted least squares.

    Parameters
    ----------
    mean_n_pu
        Mean true pileup of each bin, shape ``(..., G)``.
    sigma
        Resolution in each bin [GeV], shape ``(..., G)``.
    n
        Events per bin: the variance of sigma^2 is taken as ``2 sigma^4 / n`` (Gaussian).
    weight_sigma
        The sigma used in the weights (default ``sigma``); the bootstrap passes the data's.

    Returns
    -------
    a, b
        ``a`` [GeV] (resolution without pileup) and ``b`` [GeV per sqrt(interaction)]; negative
        fitted squares are reported as ``-sqrt(|.|)`` so that a non-physical fit is visible.
    """
    x = np.asarray(mean_n_pu, dtype=np.float64)
    y = np.asarray(sigma, dtype=np.float64) ** 2
    ws = np.asarray(weight_sigma if weight_sigma is not None else sigma, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where((n >= 2) & np.isfinite(y) & (ws > 0), n / (2 * ws**4), 0.0)
    w = np.broadcast_to(w, y.shape)
    x = np.broadcast_to(x, y.shape)
    y = np.where(w > 0, y, 0.0)
    sw = w.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xm = (w * x).sum(-1) / sw
        ym = (w * y).sum(-1) / sw
        slope = (w * (x - xm[..., None]) * (y - ym[..., None])).sum(-1) / (
            w * (x - xm[..., None]) ** 2
        ).sum(-1)
    intercept = ym - slope * xm
    return np.sign(intercept) * np.sqrt(np.abs(intercept)), np.sign(slope) * np.sqrt(np.abs(slope))


def roc_auc(signal: np.ndarray, background: np.ndarray) -> float:
    """Area under the ROC curve of a score separating ``signal`` from ``background`` (the
    Mann-Whitney probability that a signal event scores higher, ties counted half)."""
    from scipy.stats import rankdata

    signal, background = np.asarray(signal, np.float64), np.asarray(background, np.float64)
    if len(signal) == 0 or len(background) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([signal, background]))
    u = ranks[: len(signal)].sum() - len(signal) * (len(signal) + 1) / 2
    return float(u / (len(signal) * len(background)))


def covariance_figures(
    e: np.ndarray, t: np.ndarray, cov: np.ndarray, has_invisible: np.ndarray
) -> dict[str, float]:
    """Figures of an estimator that gives a covariance for each event.

    Parameters
    ----------
    e, t
        ``(n, 2)`` estimate and truth [GeV].
    cov
        ``(n, 2, 2)`` covariance of the estimate [GeV^2], symmetric positive definite.
    has_invisible
        ``(n,)`` bool: the event's process has invisible particles (for the significance).

    Returns
    -------
    dict
        ``pull_width_1``, ``pull_width_2``: standard deviations of the whitened residual
        ``L^-1 (e - t)`` (``cov = L L^T``) along its two axes (1 when the covariance is right);
        ``coverage_1sigma``, ``coverage_2sigma``: fractions with ``chi^2 = (e-t)^T cov^-1 (e-t)``
        below the 2-dof 68.27% and 95.45% quantiles; ``significance_auc``: ROC AUC of the MET
        significance ``S = sqrt(e^T cov^-1 e)`` (ATLAS's object-based definition) separating events
        with invisible particles from events without; ``mean_significance_invisible`` and
        ``mean_significance_no_invisible``.
    """
    e, t, cov = (np.asarray(a, dtype=np.float64) for a in (e, t, cov))
    chol = np.linalg.cholesky(cov)
    z = np.linalg.solve(chol, (e - t)[..., None])[..., 0]
    chi2 = (z**2).sum(-1)
    s = np.sqrt((np.linalg.solve(chol, e[..., None])[..., 0] ** 2).sum(-1))
    has_invisible = np.asarray(has_invisible, dtype=bool)
    return {
        "pull_width_1": float(np.std(z[:, 0])),
        "pull_width_2": float(np.std(z[:, 1])),
        "coverage_1sigma": float(np.mean(chi2 < CHI2_2DOF_1SIGMA)),
        "coverage_2sigma": float(np.mean(chi2 < CHI2_2DOF_2SIGMA)),
        "significance_auc": roc_auc(s[has_invisible], s[~has_invisible]),
        "mean_significance_invisible": float(np.mean(s[has_invisible]))
        if has_invisible.any()
        else float("nan"),
        "mean_significance_no_invisible": float(np.mean(s[~has_invisible]))
        if (~has_invisible).any()
        else float("nan"),
    }
