"""The definitions of metbench's figures of merit: one formula each, used by CLI, site and asv.

Notation: ``e`` is the estimate and ``t`` the truth, both transverse vectors [GeV].

* MET task: ``e`` is the estimated MET, ``t`` the generator MET (sum of invisible particles).
* Recoil task (Z -> mu mu, as CMS measures it, :mod:`metbench.recoil`): the estimator runs on the
  event with the selected dimuon removed and returns ``e'``; the hadronic recoil is ``u = -e'``,
  ``t = qT`` (the reconstructed dimuon's) and ``e = -u = e'``, so that ``e_par = -u_par``, the
  recoil response ``-<u_par>/qT`` is ``<e_par>/<|t|>`` and ``e_par - |t| = -(u_par + qT)``.

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

Quantiles use NumPy's ``inverted_cdf`` definition. The quantile widths are CMS's figures and are
kept as secondary columns: they are *not* robust to a non-linear shrinkage of the estimate
(zeroing it below a threshold, or scaling it by a confidence of the estimator's own making,
narrows (P84 - P16)/2 of e_perp).

The headline S (response-corrected residual RMS)
------------------------------------------------
In bin ``k`` of |t| (:data:`HEADLINE_EDGES`, GeV; the last bin open), over the events of the
processes with neutrinos:

* ``R_k = sum(e_par) / sum(|t|)`` (the response),
* the response-corrected residual ``r = e / R_k - t`` (a vector),
* ``sigma_par_k = sqrt(<r_par^2>)``, ``sigma_perp_k = sqrt(<r_perp^2>)`` (RMS about zero, bias
  included; ``<r_par> = 0`` by construction of ``R_k``), and
  ``sigma_k = sqrt(<|r|^2> / 2) = sqrt((sigma_par_k^2 + sigma_perp_k^2) / 2)``, the RMS per
  component;
* ``S = mean_k sigma_k`` over the bins with at least :data:`MIN_BIN_EVENTS` events, unweighted
  (``S_par``, ``S_perp`` alike from ``sigma_par_k``, ``sigma_perp_k``).

An entry whose ``R_k`` interval reaches 0 or lies below :data:`MIN_RESPONSE` in any bin of S has
no S (:func:`response_fails`). Because the residual is the whole vector and the response is
corrected bin by bin, neither shrinking the estimate, nor zeroing it below a threshold, nor scaling
it by a confidence earns anything: each leaves some events' ``e / R_k`` away from ``t``.

Pileup dependence: the fit ``S^2 = a^2 + b^2 n_pu`` over equal-population n_pu bins (see
:func:`pileup_fit`) and its extrapolation to ``n_pu = 200`` (:func:`pileup_extrapolation`).
Fake MET (processes without neutrinos): :func:`roc_auc` of |e| and the fake rate at the |e|
threshold that keeps 90% of the events with neutrinos and |t| > 100 GeV (:func:`fake_rate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from metbench.scoring.bootstrap import (
    GroupedSample,
    grouped_statistics,
    quantile_key,
    resample_sums,
)

__all__ = [
    "CHI2_2DOF_1SIGMA",
    "CHI2_2DOF_2SIGMA",
    "CORRECTED_COLUMNS",
    "FAKE_EFFICIENCY",
    "FAKE_SIGNAL_MIN_TRUTH",
    "FAKE_THRESHOLD_MIN_TRUTH",
    "FIGURES",
    "HEADLINE_EDGES",
    "MIN_BIN_EVENTS",
    "MIN_MEAN_TRUTH",
    "MIN_RESPONSE",
    "TAIL_THRESHOLDS",
    "Components",
    "ResponseCurve",
    "components",
    "corrected_resolution",
    "corrected_values",
    "covariance_figures",
    "fake_rate",
    "fake_threshold",
    "figures_from_stats",
    "fit_response_curve",
    "fraction_above",
    "gaussian_equivalent_chi2",
    "mean_over_bins",
    "pileup_extrapolation",
    "pileup_fit",
    "pull_figures",
    "pull_kurtosis",
    "response_fails",
    "roc_auc",
    "sums_and_quantiles",
    "weighted_roc_auc",
    "whiten",
    "whitened_residuals",
]

#: Bin edges of the headline S in |t| (or qT) [GeV]: CMS's edges from 30 GeV; the last bin is open.
HEADLINE_EDGES: Final[tuple[float, ...]] = (
    30, 40, 50, 60, 80, 100, 120, 140, 170, 200, 230, 260, 290, 350,
)  # fmt: skip
#: A bin enters S only with at least this many events.
MIN_BIN_EVENTS: Final[int] = 20
#: The response R (and every figure divided by it) is defined only where <|t|> >= this [GeV].
MIN_MEAN_TRUTH: Final[float] = 20.0
#: An entry whose R_k interval reaches 0 or lies below this in a bin of S gets no S.
MIN_RESPONSE: Final[float] = 0.1
#: Fake MET: events with neutrinos above this |t| [GeV] are the signal of the AUC.
FAKE_SIGNAL_MIN_TRUTH: Final[float] = 50.0
#: Fake MET: the |e| threshold keeps this fraction of the events with neutrinos ...
FAKE_EFFICIENCY: Final[float] = 0.90
#: ... and |t| above this [GeV].
FAKE_THRESHOLD_MIN_TRUTH: Final[float] = 100.0
#: Per-event columns of :func:`corrected_values`, whose group sums :func:`corrected_resolution`
#: turns into the response-corrected resolution.
CORRECTED_COLUMNS: Final[tuple[str, ...]] = ("n", "truth", "par", "q2", "qt", "t2", "p2")

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
    "rc_sigma": ("σ (RMS, R-corrected)", "GeV", True),
    "rc_sigma_par": ("σ∥ (RMS, R-corrected)", "GeV", True),
    "rc_sigma_perp": ("σ⊥ (RMS, R-corrected)", "GeV", True),
    "S": ("S", "GeV", True),
    "S_par": ("S∥", "GeV", True),
    "S_perp": ("S⊥", "GeV", True),
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
    defined = valid & (out["mean_truth"] >= MIN_MEAN_TRUTH)
    for key, value in out.items():
        if key == "n":
            continue
        out[key] = np.where(defined if key in _NEEDS_RESPONSE else valid, value, np.nan)
    return out


_NEEDS_RESPONSE: Final = frozenset({"response", "sigma_par_over_r", "sigma_perp_over_r"})


def corrected_values(c: Components, reference: np.ndarray) -> np.ndarray:
    """Per-event columns (:data:`CORRECTED_COLUMNS`) whose group sums give the response-corrected
    residual for *any* response of the group (:func:`corrected_resolution`).

    With a per-event reference response ``R0`` (the data's R of the event's |t| bin),
    ``q = e_par / R0 - |t|`` and ``p = e_perp / R0``; the columns are ``1, |t|, e_par, q^2,
    q |t|, |t|^2, p^2``. They stay of the scale of the residual, so resampled sums keep their
    precision (a reference of 0 or non-finite is replaced by 1).
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref = np.where(np.isfinite(ref) & (np.abs(ref) > 1e-9), ref, 1.0)
    q = c.par / ref - c.truth
    p = c.perp / ref
    return np.stack([np.ones_like(q), c.truth, c.par, q * q, q * c.truth, c.truth**2, p * p], 1)


def corrected_resolution(sums: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """The response-corrected resolution of groups of events from their summed
    :func:`corrected_values` (``sums[..., j]`` for column ``j``; ``reference`` broadcasts against
    ``sums[..., 0]``).

    For a group with response ``R = sum(e_par) / sum(|t|)`` and ``k = R / R0``, the residual
    ``r = e / R - t`` has ``r_par = (q - (k - 1) |t|) / k`` and ``r_perp = p / k``, so
    ``sum r_par^2 = (sum q^2 - 2 (k-1) sum q|t| + (k-1)^2 sum |t|^2) / k^2``.

    Returns
    -------
    dict
        ``n``, ``mean_truth`` [GeV], ``response``, ``rc_sigma_par``, ``rc_sigma_perp`` and
        ``rc_sigma`` (the RMS per component) [GeV]; NaN for groups without events or with
        ``R = 0``.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref = np.where(np.isfinite(ref) & (np.abs(ref) > 1e-9), ref, 1.0)
    n, truth, par, q2, qt, t2, p2 = (sums[..., j] for j in range(len(CORRECTED_COLUMNS)))
    with np.errstate(divide="ignore", invalid="ignore"):
        response = par / truth
        k = response / ref
        d = k - 1.0
        par2 = np.maximum(q2 - 2 * d * qt + d * d * t2, 0.0) / (k * k * n)
        perp2 = np.maximum(p2, 0.0) / (k * k * n)
        ok = (n > 0) & np.isfinite(k) & (k != 0)
        return {
            "n": n,
            "mean_truth": np.where(n > 0, truth / n, np.nan),
            "response": np.where(n > 0, response, np.nan),
            "rc_sigma_par": np.where(ok, np.sqrt(par2), np.nan),
            "rc_sigma_perp": np.where(ok, np.sqrt(perp2), np.nan),
            "rc_sigma": np.where(ok, np.sqrt(0.5 * (par2 + perp2)), np.nan),
        }


def mean_over_bins(sigma: np.ndarray, use: np.ndarray) -> np.ndarray:
    """The unweighted mean of ``sigma[..., k]`` over the bins where ``use[..., k]`` (S from its
    bins); NaN if a used bin is NaN or no bin is used."""
    sigma = np.asarray(sigma, dtype=np.float64)
    use = np.broadcast_to(np.asarray(use, dtype=bool), sigma.shape)
    n_used = use.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_used > 0, np.where(use, sigma, 0.0).sum(-1) / n_used, np.nan)


def response_fails(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Whether a response interval ``[low, high]`` reaches 0 or lies below :data:`MIN_RESPONSE`
    (NaN bounds fail): such an entry gets no S."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(low) | ~np.isfinite(high) | (low <= 0) | (high < MIN_RESPONSE)


@dataclass(frozen=True)
class ResponseCurve:
    """A monotone response curve for the calibrated figures: ``<e_par>`` as a function of ``|t|``
    at knots (both increasing, GeV), from :func:`fit_response_curve`."""

    truth: np.ndarray
    estimate: np.ndarray

    def calibrate(self, e: np.ndarray) -> np.ndarray:
        """Numerical inversion: each estimate ``e`` (``(n, 2)``, GeV) scaled so that its magnitude
        becomes the ``|t|`` whose mean response is ``|e|`` (linear between knots; beyond the
        first or last knot the knot's ratio ``|t| / <e_par>``)."""
        e = np.asarray(e, dtype=np.float64)
        mag = np.hypot(e[:, 0], e[:, 1])
        inner = np.interp(mag, self.estimate, self.truth)
        low_ratio = self.truth[0] / self.estimate[0]
        high_ratio = self.truth[-1] / self.estimate[-1]
        target = np.where(
            mag < self.estimate[0],
            mag * low_ratio,
            np.where(mag > self.estimate[-1], mag * high_ratio, inner),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(mag > 0, target / mag, 1.0)
        return e * scale[:, None]


def fit_response_curve(
    truth_mag: np.ndarray, e_par: np.ndarray, edges: tuple[float, ...], min_events: int = 20
) -> ResponseCurve | None:
    """Fit the monotone response curve used by the calibrated figures.

    In each bin of ``|t|`` (``edges``, GeV, last bin open) with at least ``min_events`` events,
    the knot ``(<|t|>, <e_par>)``; the ``<e_par>`` are made non-decreasing by weighted
    pool-adjacent-violators (isotonic regression, weights = events), knots with equal ``<e_par>``
    merged. Leading knots with ``<e_par> <= 0`` are dropped (a response <= 0 cannot be inverted;
    an estimator that predicts ~0 below a few GeV of true MET has them): below the first
    positive knot its ratio ``|t| / <e_par>`` applies. None when fewer than two knots remain.
    """
    t = np.asarray(truth_mag, np.float64)
    par = np.asarray(e_par, np.float64)
    full = np.asarray((*edges, np.inf))
    index = np.searchsorted(full, t, side="right") - 1
    ok = (index >= 0) & (index < len(edges))
    n = np.bincount(index[ok], minlength=len(edges)).astype(np.float64)
    st = np.bincount(index[ok], t[ok], minlength=len(edges))
    sp = np.bincount(index[ok], par[ok], minlength=len(edges))
    keep = n >= min_events
    if keep.sum() < 2:
        return None
    x, y, w = st[keep] / n[keep], sp[keep] / n[keep], n[keep]
    # pool adjacent violators: blocks of (weighted mean y, weight, weighted mean x)
    blocks: list[list[float]] = []
    for xi, yi, wi in zip(x, y, w, strict=True):
        blocks.append([yi, wi, xi])
        while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
            y2, w2, x2 = blocks.pop()
            y1, w1, x1 = blocks.pop()
            blocks.append(
                [(y1 * w1 + y2 * w2) / (w1 + w2), w1 + w2, (x1 * w1 + x2 * w2) / (w1 + w2)]
            )
    while blocks and blocks[0][0] <= 0:
        blocks.pop(0)
    if len(blocks) < 2:
        return None
    arr = np.asarray(blocks)
    return ResponseCurve(truth=arr[:, 2], estimate=arr[:, 0])


def pileup_extrapolation(a: np.ndarray, b: np.ndarray, n_pu: float = 200.0) -> np.ndarray:
    """``sqrt(a^2 + b^2 n_pu)`` from the signed fit of :func:`pileup_fit` (a negative fitted
    square enters with its sign; NaN if the total is negative) [GeV]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    total = np.sign(a) * a * a + np.sign(b) * b * b * n_pu
    with np.errstate(invalid="ignore"):
        return np.where(total >= 0, np.sqrt(np.abs(total)), np.nan)


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


def _placements(signal: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placement values: for each signal value the background fraction below it (ties
    half), for each background value the signal fraction above it (ties half)."""

    def count(sorted_ref: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(query, kind="stable")  # sorted queries: a fast linear search
        left, right = np.empty(len(query), np.int64), np.empty(len(query), np.int64)
        left[order] = np.searchsorted(sorted_ref, query[order], side="left")
        right[order] = np.searchsorted(sorted_ref, query[order], side="right")
        return left, right

    s, b = np.sort(signal), np.sort(background)
    b_left, b_right = count(b, signal)
    s_left, s_right = count(s, background)
    v = 0.5 * (b_left + b_right) / len(b)
    u = (len(s) - 0.5 * (s_left + s_right)) / len(s)
    return v, u


def weighted_roc_auc(
    signal: np.ndarray, background: np.ndarray, w_signal: np.ndarray, w_background: np.ndarray
) -> np.ndarray:
    """:func:`roc_auc` under many weightings at once, to first order in the weights.

    ``w_signal`` ``(n_s, B)`` and ``w_background`` ``(n_b, B)`` (bootstrap multiplicities); returns
    ``(B,)``. The AUC is a two-sample U-statistic; with weights ``w = 1 + d`` it is
    ``AUC + sum_s d_s (V_s - AUC) / n_s + sum_b d_b (U_b - AUC) / n_b`` plus terms of order
    ``1/n`` relative to these, where ``V_s`` and ``U_b`` are DeLong's placement values (the
    background fraction below a signal value, the signal fraction above a background value;
    ties half). The bootstrap of the AUC uses this expansion (its spread is DeLong's variance);
    unit weights give the exact AUC.
    """
    s = np.asarray(signal, np.float64)
    b = np.asarray(background, np.float64)
    if len(s) == 0 or len(b) == 0:
        return np.full(np.shape(w_signal)[1], np.nan)
    v, u = _placements(s, b)
    auc = float(v.mean())
    # sum_i (w_i - 1) x_i = sum_i w_i x_i - sum_i x_i
    dv, du = v - auc, u - auc
    ds = (resample_sums(np.asarray(w_signal), dv) - dv.sum()) / len(s)
    db = (resample_sums(np.asarray(w_background), du) - du.sum()) / len(b)
    return auc + ds + db


def fake_threshold(
    signal: np.ndarray, w_signal: np.ndarray, efficiency: float = FAKE_EFFICIENCY
) -> np.ndarray:
    """The |e| threshold that keeps ``efficiency`` of the signal, for many weightings at once:
    the weighted inverted-CDF quantile ``1 - efficiency`` of ``signal`` (at least ``efficiency``
    of the signal lies at or above it). Weights ``(n_s, B)`` (small non-negative integers);
    returns ``(B,)`` [GeV]."""
    s = np.asarray(signal, np.float64)
    w_s = np.asarray(w_signal)
    p = 1 - efficiency
    if np.all(w_s == 1):  # the data: exact, no resampling
        return np.full(w_s.shape[1], np.sort(s)[max(int(np.ceil(p * len(s))) - 1, 0)])
    sample = GroupedSample(np.zeros(len(s), np.int64), 1, {"n": np.ones(len(s))}, {"x": s}, (p,))
    _, boot = grouped_statistics(sample, w_s.shape[1], event_counts=w_s)
    assert boot is not None
    return boot[quantile_key("x", p)][:, 0]


def fraction_above(
    background: np.ndarray, w_background: np.ndarray, threshold: np.ndarray
) -> np.ndarray:
    """The weighted fraction of ``background`` strictly above ``threshold``, one threshold per
    weighting: weights ``(n_b, B)``, thresholds ``(B,)``; returns ``(B,)`` (NaN where the
    weights sum to 0)."""
    b = np.asarray(background, np.float64)
    w_b = np.asarray(w_background)
    threshold = np.asarray(threshold, np.float64)
    if np.all(w_b == 1) and np.all(threshold == threshold[0]):  # the data: exact
        return np.full(len(threshold), np.mean(b > threshold[0]))
    # background above the highest threshold by one matrix product; between the lowest and the
    # highest threshold, event by event
    lo, hi = float(np.nanmin(threshold)), float(np.nanmax(threshold))
    total = w_b.sum(0, dtype=np.float64)
    above = resample_sums(w_b, (b > hi).astype(np.float64))
    window = np.flatnonzero((b > lo) & (b <= hi))
    if len(window):
        in_window = w_b[window].astype(np.float64) * (b[window, None] > threshold[None, :])
        above = above + in_window.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, above / total, np.nan)


def fake_rate(
    signal: np.ndarray,
    background: np.ndarray,
    w_signal: np.ndarray,
    w_background: np.ndarray,
    efficiency: float = FAKE_EFFICIENCY,
) -> tuple[np.ndarray, np.ndarray]:
    """The fake rate at fixed signal efficiency, for many weightings at once.

    The threshold is the weighted inverted-CDF quantile ``1 - efficiency`` of the signal's |e|
    (so at least ``efficiency`` of the signal lies at or above it, :func:`fake_threshold`); the
    fake rate is the background's weighted fraction strictly above it
    (:func:`fraction_above`). Weights ``(n_s, B)``, ``(n_b, B)`` (small non-negative integers);
    returns ``(threshold, fake rate)``, each ``(B,)``.
    """
    threshold = fake_threshold(signal, w_signal, efficiency)
    return threshold, fraction_above(background, w_background, threshold)


def gaussian_equivalent_chi2(chi2: np.ndarray, dof: np.ndarray | float | None) -> np.ndarray:
    """The chi^2 (2 degrees of freedom) that a Gaussian gives the tail probability that a
    bivariate Student t gives ``chi2``.

    An estimator may describe its error as a bivariate Student t with ``dof`` = nu > 2 degrees of
    freedom and covariance ``cov`` (heavier tails than a Gaussian of the same covariance; nu ->
    infinity is the Gaussian). Its scale matrix is ``cov (nu - 2) / nu``, so that with
    ``chi2 = r^T cov^-1 r``, ``P(|r| inside) = 1 - (1 + chi2 / (nu - 2))^(-nu / 2)`` (the radial
    distribution: ``r^T scale^-1 r / 2`` follows F(2, nu)), and the Gaussian chi^2 with the same
    probability, ``1 - exp(-q / 2)``, is ``q = nu ln(1 + chi2 / (nu - 2))``.

    Parameters
    ----------
    chi2
        ``(n,)`` ``r^T cov^-1 r`` of each event's residual ``r`` [dimensionless].
    dof
        ``(n,)`` or scalar nu > 2; ``None`` or ``inf``: Gaussian, ``chi2`` unchanged.

    Returns
    -------
    ndarray
        ``(n,)`` q: the same coverage thresholds (:data:`CHI2_2DOF_1SIGMA`, ...) apply to it as to a
        Gaussian's chi^2.
    """
    chi2 = np.asarray(chi2, dtype=np.float64)
    if dof is None:
        return chi2
    nu = np.broadcast_to(np.asarray(dof, dtype=np.float64), chi2.shape)
    finite = np.isfinite(nu)
    nu_f = np.where(finite, nu, 3.0)
    q = nu_f * np.log1p(chi2 / (nu_f - 2.0))
    return np.asarray(np.where(finite, q, chi2))


def whitened_residuals(
    e: np.ndarray, t: np.ndarray, cov: np.ndarray, dof: np.ndarray | float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The residual whitened by the estimator's covariance (and, for a Student t error model,
    mapped to the Gaussian with the same tail probability).

    Parameters
    ----------
    e, t
        ``(n, 2)`` estimate and truth [GeV].
    cov
        ``(n, 2, 2)`` covariance of the estimate [GeV^2], symmetric positive definite.
    dof
        ``(n,)`` degrees of freedom nu > 2 of a bivariate Student t error with covariance
        ``cov`` (:func:`gaussian_equivalent_chi2`), or ``None``: Gaussian.

    Returns
    -------
    z
        ``(n, 2)`` ``L^-1 (e - t)`` with ``cov = L L^T`` (Cholesky), rescaled along itself to the
        length ``sqrt(chi2)`` below: unit normal components when the error model is right.
    chi2
        ``(n,)`` ``|z|^2``: ``(e - t)^T cov^-1 (e - t)`` for a Gaussian, its Gaussian equivalent
        for a Student t; chi-squared with 2 degrees of freedom when the error model is right.
    """
    r = np.asarray(e, dtype=np.float64) - np.asarray(t, dtype=np.float64)
    z = whiten(r[..., None], cov)[..., 0]
    return _gaussianised(z, dof)


def _gaussianised(z: np.ndarray, dof: np.ndarray | float | None) -> tuple[np.ndarray, np.ndarray]:
    """``z`` rescaled along itself to the Gaussian-equivalent length, and that length squared."""
    chi2 = (z**2).sum(-1)
    if dof is None:
        return z, chi2
    q = gaussian_equivalent_chi2(chi2, dof)
    scale = np.sqrt(np.divide(q, chi2, out=np.ones_like(q), where=chi2 > 0))
    return z * scale[:, None], q


def whiten(v: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``L^-1 v`` with ``cov = L L^T`` (Cholesky) for ``(n, 2, k)`` columns ``v`` [GeV] and
    ``(n, 2, 2)`` covariances [GeV^2]: one factorisation for all ``k`` vectors of an event."""
    chol = np.linalg.cholesky(np.asarray(cov, dtype=np.float64))
    return np.asarray(np.linalg.solve(chol, np.asarray(v, dtype=np.float64)))


def pull_figures(z: np.ndarray, chi2: np.ndarray) -> dict[str, float]:
    """``pull_width_1``, ``pull_width_2`` (standard deviations of the whitened residual
    :func:`whitened_residuals` along its two axes) and ``coverage_1sigma``, ``coverage_2sigma``
    (fractions of ``chi2`` below the 2-dof 68.27% and 95.45% quantiles): 1, 1, 0.6827, 0.9545
    when the covariance is right."""
    return {
        "pull_width_1": float(np.std(z[:, 0])),
        "pull_width_2": float(np.std(z[:, 1])),
        "coverage_1sigma": float(np.mean(chi2 < CHI2_2DOF_1SIGMA)),
        "coverage_2sigma": float(np.mean(chi2 < CHI2_2DOF_2SIGMA)),
    }


def pull_kurtosis(z: np.ndarray) -> float:
    """The kurtosis of the whitened residual ``z`` ``(n, 2)``: the standardised fourth moment
    ``<(z - <z>)^4> / var(z)^2`` of each axis, averaged over the two (3 for a normal distribution;
    larger: heavier tails than the covariance says, which no rescaling of it can cure)."""
    z = np.asarray(z, dtype=np.float64)
    d = z - z.mean(axis=0)
    return float(np.mean((d**4).mean(axis=0) / (d**2).mean(axis=0) ** 2))


def covariance_figures(
    e: np.ndarray,
    t: np.ndarray,
    cov: np.ndarray,
    has_invisible: np.ndarray,
    dof: np.ndarray | None = None,
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
    dof
        ``(n,)`` degrees of freedom of a Student t error model with covariance ``cov``
        (:func:`gaussian_equivalent_chi2`), or ``None``: Gaussian.

    Returns
    -------
    dict
        ``pull_width_1``, ``pull_width_2``: standard deviations of the whitened residual
        ``L^-1 (e - t)`` (``cov = L L^T``; for a Student t its Gaussian equivalent,
        :func:`whitened_residuals`) along its two axes (1 when the error model is right);
        ``coverage_1sigma``, ``coverage_2sigma``: fractions with ``chi^2 = (e-t)^T cov^-1 (e-t)``
        (its Gaussian equivalent) below the 2-dof 68.27% and 95.45% quantiles, i.e. the fractions
        of true MET inside the estimator's own 68.27% and 95.45% regions; ``significance_auc``:
        ROC AUC of the MET significance ``S = sqrt(e^T cov^-1 e)`` (ATLAS's object-based
        definition; for a Student t its Gaussian equivalent, the same p-value of "no MET")
        separating events with invisible particles from events without;
        ``mean_significance_invisible`` and ``mean_significance_no_invisible``.
    """
    e, t, cov = (np.asarray(a, dtype=np.float64) for a in (e, t, cov))
    w = whiten(np.stack([e - t, e], -1), cov)  # the residual, and e for the significance
    z, chi2 = _gaussianised(w[..., 0], dof)
    s = np.sqrt(gaussian_equivalent_chi2((w[..., 1] ** 2).sum(-1), dof))
    has_invisible = np.asarray(has_invisible, dtype=bool)
    return {
        **pull_figures(z, chi2),
        "significance_auc": roc_auc(s[has_invisible], s[~has_invisible]),
        "mean_significance_invisible": float(np.mean(s[has_invisible]))
        if has_invisible.any()
        else float("nan"),
        "mean_significance_no_invisible": float(np.mean(s[~has_invisible]))
        if (~has_invisible).any()
        else float("nan"),
    }
