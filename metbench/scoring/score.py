"""Scoring: predictions and truth in, every figure with its bootstrap interval out.

:func:`score` is the one scoring implementation; ``metbench score``, ``metbench run``, the
leaderboard and the asv benchmarks all call it. The formulas are in
:mod:`metbench.scoring.metrics`; this module decides which events enter which task:

* ``met``: the events of the processes with neutrinos (every process not in
  :data:`NO_INVISIBLE_PROCESSES`), against the generator MET. The headline S over the |t| bins of
  :data:`~metbench.scoring.metrics.HEADLINE_EDGES`, its curve, S per process and in
  equal-population n_pu and n_pv bins, the pileup fit, the calibrated variant, and CMS's quantile
  figures as secondary columns.
* ``fake``: the processes without neutrinos (QCD, Z -> mu mu) against the events with neutrinos.
* ``recoil``: selected Z -> mu mu events (:mod:`metbench.recoil`), the estimator's MET on the event
  without its two muons against the dimuon qT; the same figures as ``met`` in qT bins.

Every interval comes from one Poisson bootstrap whose multiplicities depend on the event id only
(:func:`~metbench.scoring.bootstrap.event_poisson_counts`), so that every entry scored on the same
events is resampled alike and differences between entries can be bootstrapped in pairs
(:mod:`metbench.scoring.ranking`).
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
    event_poisson_counts,
    grouped_statistics,
    grouped_sums,
)
from metbench.scoring.metrics import (
    CORRECTED_COLUMNS,
    FAKE_EFFICIENCY,
    FAKE_SIGNAL_MIN_TRUTH,
    FAKE_THRESHOLD_MIN_TRUTH,
    FIGURES,
    HEADLINE_EDGES,
    MIN_BIN_EVENTS,
    MIN_MEAN_TRUTH,
    MIN_RESPONSE,
    ResponseCurve,
    components,
    corrected_resolution,
    corrected_values,
    covariance_figures,
    fake_threshold,
    figures_from_stats,
    fit_response_curve,
    fraction_above,
    mean_over_bins,
    pileup_extrapolation,
    pileup_fit,
    response_fails,
    sums_and_quantiles,
    weighted_roc_auc,
)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "HEADLINE",
    "NO_INVISIBLE_PROCESSES",
    "PILEUP_EXTRAPOLATION_N_PU",
    "RECOIL_PROCESSES",
    "CalibrationSample",
    "RecoilSample",
    "ScoringError",
    "Truth",
    "align_predictions",
    "has_neutrinos",
    "load_recoil_truth",
    "load_truth",
    "n_pu_bins",
    "score",
]

#: The figure the leaderboard ranks by: (task, figure).
HEADLINE: Final[tuple[str, str]] = ("met", "S")
#: The pileup fit is extrapolated to this n_pu (HL-LHC, mu = 200).
PILEUP_EXTRAPOLATION_N_PU: Final[float] = 200.0
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


@dataclass(frozen=True)
class RecoilSample:
    """The recoil task's events.

    Attributes
    ----------
    index
        ``(m,)`` index of each selected Z -> mu mu event into the :class:`Truth`.
    estimate
        ``(m, 2)`` the estimator's MET on the event without its two muons, ``e' = -u`` [GeV].
    qt
        ``(m, 2)`` the selected dimuon's transverse momentum [GeV].
    """

    index: np.ndarray
    estimate: np.ndarray
    qt: np.ndarray


@dataclass(frozen=True)
class CalibrationSample:
    """Estimates and truth on the validation split, for the calibrated figures: ``estimate`` and
    ``truth`` ``(m, 2)`` [GeV] (of the events with neutrinos), ``qt_estimate`` / ``qt`` likewise
    for the recoil task (or None)."""

    estimate: np.ndarray
    truth: np.ndarray
    recoil_estimate: np.ndarray | None = None
    recoil_qt: np.ndarray | None = None


def has_neutrinos(process: np.ndarray) -> np.ndarray:
    """Whether each event's process has invisible particles from the hard scatter (every process
    not in :data:`NO_INVISIBLE_PROCESSES`; a real file's process counts as one)."""
    return ~np.isin(np.asarray(process).astype(str), NO_INVISIBLE_PROCESSES)


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


def load_recoil_truth(folder: Path | str, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The recoil task's events of a split: ``(event_id (m,), qT (m, 2))`` of the Z -> mu mu events
    with a selected dimuon (:func:`metbench.recoil.select_dimuons` on the stored candidates)."""
    import awkward as ak

    from metbench.data.source import EventSource
    from metbench.recoil import select_dimuons

    source = EventSource(folder, split)
    processes = [p for p in RECOIL_PROCESSES if p in source.manifest.get("processes", {})]
    if not processes:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    source = EventSource(folder, split, processes=processes)
    names = ["event_id", *(f"pf.{c}" for c in ("pt", "eta", "phi", "mass", "charge", "pdg_id"))]
    ids, qts = [], []
    for arr in source.iter_files(names):
        counts = ak.to_numpy(ak.num(arr.pf.pt))
        event = np.repeat(np.arange(len(arr)), counts)
        flat = {
            c: ak.to_numpy(ak.flatten(arr.pf[c]))
            for c in ("pt", "eta", "phi", "mass", "charge", "pdg_id")
        }
        sel = select_dimuons(event, len(arr), **flat)
        ids.append(ak.to_numpy(arr.event_id)[sel.selected])
        qts.append(sel.qt[sel.selected])
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    return np.concatenate(ids).astype(np.int64), np.concatenate(qts)


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


def _clean(a: Any) -> Any:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return float(a) if np.isfinite(a) else None
    return [_clean(v) for v in a]


def _interval(point: Any, boot: Any, confidence: float) -> dict[str, Any]:
    """``{"value", "low", "high"}`` of a figure (scalar or per bin) from its point value and its
    ``(n_boot, ...)`` resamples (None: no interval); NaN becomes None."""
    out: dict[str, Any] = {"value": _clean(point)}
    if boot is not None:
        alpha = (1 - confidence) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins stay NaN
            low, high = np.nanquantile(boot, [alpha, 1 - alpha], axis=0)
        out["low"], out["high"] = _clean(low), _clean(high)
    return out


def _squeeze(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in entry.items()}


def _labelled(binning: Binning) -> dict[str, Any]:
    out: dict[str, Any] = {"labels": list(binning.labels)}
    if binning.edges is not None:
        out["edges"] = [float(x) if np.isfinite(x) else None for x in binning.edges]
    return out


_S_FIGURES: Final = ("S", "S_par", "S_perp")
#: The figures :func:`figures_from_stats` gives (CMS's, from sums and quantiles).
_CLASSIC: Final = tuple(k for k in FIGURES if k not in _S_FIGURES and not k.startswith("rc_"))


def _s_figures(res: dict[str, np.ndarray], use: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "S": mean_over_bins(res["rc_sigma"], use),
        "S_par": mean_over_bins(res["rc_sigma_par"], use),
        "S_perp": mean_over_bins(res["rc_sigma_perp"], use),
    }


def _resolution_task(
    e: np.ndarray,
    t: np.ndarray,
    n_pu: np.ndarray,
    n_pv: np.ndarray,
    process: np.ndarray | None,
    counts: np.ndarray | None,
    confidence: float,
    curve: ResponseCurve | None,
    curve_reason: str | None,
) -> dict[str, Any]:
    """Every figure of the MET or recoil task (see the module docstring); ``counts`` are the
    events' bootstrap multiplicities ``(n, n_boot)``."""
    n = len(e)
    c = components(e[:, 0], e[:, 1], t[:, 0], t[:, 1])
    truth_bins = edge_binning("truth", c.truth, CMS_QT_EDGES)
    K = len(truth_bins)
    assert truth_bins.edges is not None
    in_headline = np.asarray(truth_bins.edges[:-1]) >= HEADLINE_EDGES[0]
    region = (truth_bins.index >= 0) & in_headline[np.maximum(truth_bins.index, 0)]

    # CMS's figures (quantile widths, bias, tails): over the headline region and per truth bin
    sums, quants = sums_and_quantiles(c)
    orders = {k: np.argsort(v, kind="stable") for k, v in quants.items()}
    classic: dict[str, Any] = {}
    for name, index, groups in (
        ("overall", np.where(region, 0, -1), 1),
        ("truth", truth_bins.index, K),
    ):
        sample = GroupedSample(index, groups, sums, quants, orders=orders)
        point, boot = grouped_statistics(sample, 0 if counts is None else counts.shape[1],
                                         event_counts=counts)  # fmt: skip
        classic[name] = (
            figures_from_stats(point),
            figures_from_stats(boot) if boot is not None else None,
        )

    # the response-corrected residual: sums per (group, truth bin) of each grouping
    pu_bins = edge_binning("n_pu", n_pu, quantile_edges(n_pu, n_pu_bins(n)))
    pv_bins = edge_binning("n_pv", n_pv, quantile_edges(n_pv, n_pu_bins(n)))
    proc_bins = category_binning("process", process) if process is not None else None
    U = len(pu_bins)
    # reference response per truth bin (defined even where R is not reported)
    tb = truth_bins.index
    ok = tb >= 0
    s_par = np.bincount(tb[ok], c.par[ok], minlength=K)
    s_t = np.bincount(tb[ok], c.truth[ok], minlength=K)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref_k = s_par / s_t
    reference = np.where(ok, ref_k[np.maximum(tb, 0)], 1.0)
    values = corrected_values(c, reference)
    if curve is not None:
        e_cal = curve.calibrate(e)
        cal = components(e_cal[:, 0], e_cal[:, 1], t[:, 0], t[:, 1])
        values = np.concatenate(
            [values, np.stack([cal.par, (cal.par - c.truth) ** 2, cal.perp**2], 1)], 1
        )
    nc = len(CORRECTED_COLUMNS)
    # sums per (process, n_pu bin, truth bin) cell with their resamples: the truth-bin totals,
    # S per process and S per n_pu bin all derive from them; n_pv bins: the data only
    proc_bins_ = category_binning("all", np.zeros(n)) if proc_bins is None else proc_bins
    P = len(proc_bins_)
    cell = (proc_bins_.index * U + pu_bins.index) * K + tb
    cell = np.where((proc_bins_.index >= 0) & (pu_bins.index >= 0) & ok, cell, -1)
    cp, cb = grouped_sums(cell, P * U * K, values, counts)
    cp = cp.reshape(P, U, K, -1)
    cb = cb.reshape(-1, P, U, K, cp.shape[-1]) if cb is not None else None
    V = len(pv_bins)
    pv_cell = np.where((pv_bins.index >= 0) & ok, pv_bins.index * K + tb, -1)
    pv_sums, _ = grouped_sums(pv_cell, V * K, values[:, :nc])
    pv_sums = pv_sums.reshape(V, K, -1)

    def resolution(
        gname: str, total: bool = False
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """Response-corrected resolution per (group, truth bin) of a grouping, with resamples."""
        if gname == "n_pv":
            return corrected_resolution(pv_sums, ref_k), None
        axes = {"process": (1,), "n_pu": (0,), "total": (0, 1)}["total" if total else gname]
        pt_ = cp[..., :nc].sum(axis=axes)
        bt_ = cb[..., :nc].sum(axis=tuple(a + 1 for a in axes)) if cb is not None else None
        return (
            corrected_resolution(pt_, ref_k),
            corrected_resolution(bt_, ref_k) if bt_ is not None else None,
        )

    # the curve and the headline
    res_p, res_b = resolution("process", total=True)
    use = in_headline & (res_p["n"] >= MIN_BIN_EVENTS)
    s_point = _s_figures(res_p, use)
    s_boot = _s_figures(res_b, use) if res_b is not None else None
    fig_t_p, fig_t_b = classic["truth"]
    truth_figures = {
        name: _interval(fig_t_p[name], fig_t_b[name] if fig_t_b else None, confidence)
        for name in _CLASSIC
    }
    for name in ("rc_sigma", "rc_sigma_par", "rc_sigma_perp"):
        defined = res_p["mean_truth"] >= MIN_MEAN_TRUTH
        rc_point = np.where(defined, res_p[name], np.nan)
        rc_boot = np.where(defined, res_b[name], np.nan) if res_b is not None else None
        truth_figures[name] = _interval(rc_point, rc_boot, confidence)
    r_low: list[Any] = truth_figures["response"].get("low") or []
    r_high: list[Any] = truth_figures["response"].get("high") or []
    if not r_low:  # no resamples: the point value decides
        r_low = r_high = truth_figures["response"]["value"]
    low = np.array([np.nan if v is None else v for v in r_low])
    high = np.array([np.nan if v is None else v for v in r_high])
    failing = use & response_fails(low, high)
    reason = None
    if not use.any():
        reason = f"no |t| bin from {HEADLINE_EDGES[0]:g} GeV has {MIN_BIN_EVENTS} events"
    elif failing.any():
        k = int(np.flatnonzero(failing)[0])
        reason = (
            f"response interval [{low[k]:.3g}, {high[k]:.3g}] in bin {truth_bins.labels[k]} GeV "
            f"reaches 0 or lies below {MIN_RESPONSE:g}: S is defined only for a positive response"
        )
    headline: dict[str, Any] = {
        "n_bins": int(use.sum()),
        "bins": [truth_bins.labels[k] for k in np.flatnonzero(use)],
        "ranked": reason is None,
        "reason": reason,
        "replicas": None,
    }
    for name in _S_FIGURES:
        s_value = s_point[name] if reason is None else np.nan
        s_reps = s_boot[name] if (s_boot is not None and reason is None) else None
        headline[name] = _interval(s_value, s_reps, confidence)
    if s_boot is not None and reason is None:
        headline["replicas"] = [round(float(x), 6) for x in s_boot["S"]]
    # CMS's figure, secondary: (P84 - P16)/2 of e_perp over R, per bin, averaged like S
    cms_p = mean_over_bins(fig_t_p["sigma_perp_over_r"], use)
    cms_b = mean_over_bins(fig_t_b["sigma_perp_over_r"], use) if fig_t_b else None
    headline["cms_sigma_perp_over_r"] = _interval(
        cms_p if reason is None else np.nan, cms_b if reason is None else None, confidence
    )

    out: dict[str, Any] = {
        "n_events": n,
        "headline": headline,
        "overall": {
            name: _squeeze(
                _interval(
                    classic["overall"][0][name],
                    classic["overall"][1][name] if classic["overall"][1] else None,
                    confidence,
                )
            )
            for name in _CLASSIC
        },
        "bins": {
            "truth": {
                **_labelled(truth_bins),
                "in_headline": [bool(x) for x in use],
                "figures": truth_figures,
            }
        },
    }

    # S in groups: n_pu, n_pv (the bins of S common to every group), process (its own bins)
    extra_n_pu = np.bincount(np.where(region & (pu_bins.index >= 0), pu_bins.index, U),
                             n_pu.astype(np.float64), minlength=U + 1)[:U]  # fmt: skip
    for name, binning, common in (
        ("n_pu", pu_bins, True),
        ("n_pv", pv_bins, True),
        *((("process", proc_bins, False),) if proc_bins is not None else ()),
    ):
        assert binning is not None
        gp, gb = resolution(name)
        enough = in_headline & (gp["n"] >= MIN_BIN_EVENTS)
        group_use = np.all(enough, axis=0, keepdims=True) if common else enough
        fp = _s_figures(gp, group_use)
        fb = _s_figures(gb, group_use) if gb is not None else None
        with np.errstate(divide="ignore", invalid="ignore"):
            n_g = np.where(in_headline, gp["n"], 0).sum(-1)
            resp_p = np.where(in_headline, gp["n"] * gp["mean_truth"] * gp["response"], 0).sum(-1)
            resp_p = resp_p / np.where(in_headline, gp["n"] * gp["mean_truth"], 0).sum(-1)
        figures = {k: _interval(fp[k] if reason is None else np.full(len(binning), np.nan),
                                fb[k] if (fb is not None and reason is None) else None,
                                confidence) for k in _S_FIGURES}  # fmt: skip
        figures["n"] = {"value": _clean(n_g)}
        figures["response"] = {"value": _clean(resp_p)}
        figures["n_bins"] = {"value": _clean(group_use.sum(-1) * np.ones(len(binning)))}
        if name == "n_pu":
            with np.errstate(divide="ignore", invalid="ignore"):
                mean_n_pu = extra_n_pu / n_g
            figures["mean_n_pu"] = {"value": _clean(mean_n_pu)}
        out["bins"][name] = {**_labelled(binning), "figures": figures}
        if name == "n_pu":
            a, b = pileup_fit(mean_n_pu, fp["S"], n_g)
            a_b = b_b = None
            if fb is not None:
                a_b, b_b = pileup_fit(mean_n_pu, fb["S"], n_g, weight_sigma=fp["S"])
            s200 = pileup_extrapolation(a, b, PILEUP_EXTRAPOLATION_N_PU)
            s200_b = (
                pileup_extrapolation(a_b, b_b, PILEUP_EXTRAPOLATION_N_PU)
                if a_b is not None and b_b is not None
                else None
            )
            nan = reason is not None
            out["pileup_fit"] = {
                "S": {
                    "a": _interval(np.nan if nan else a, None if nan else a_b, confidence),
                    "b": _interval(np.nan if nan else b, None if nan else b_b, confidence),
                    "at_n_pu": PILEUP_EXTRAPOLATION_N_PU,
                    "extrapolated": _interval(
                        np.nan if nan else s200, None if nan else s200_b, confidence
                    ),
                }
            }

    # calibrated: the estimate through the validation response curve, no per-bin correction
    calibrated: dict[str, Any] = {"available": curve is not None, "reason": curve_reason}
    if curve is not None:
        tot_p = cp.sum(axis=(0, 1))
        tot_b = cb.sum(axis=(1, 2)) if cb is not None else None

        def cal_figures(s: np.ndarray) -> dict[str, np.ndarray]:
            nn, tt, cpar, cd2, cp2 = (
                s[..., 0],
                s[..., 1],
                s[..., nc],
                s[..., nc + 1],
                s[..., nc + 2],
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                rms_par, rms_perp = np.sqrt(cd2 / nn), np.sqrt(cp2 / nn)
                resp = cpar / tt
                return {
                    "response": resp,
                    "closure": np.abs(resp - 1.0),
                    "rms_par": rms_par,
                    "rms_perp": rms_perp,
                    "rms": np.sqrt(0.5 * (rms_par**2 + rms_perp**2)),
                }

        cf_p = cal_figures(tot_p)
        cf_b = cal_figures(tot_b) if tot_b is not None else None
        defined = res_p["mean_truth"] >= MIN_MEAN_TRUTH
        calibrated["bins"] = {
            **_labelled(truth_bins),
            "figures": {
                k: _interval(
                    np.where(defined, v, np.nan),
                    np.where(defined, cf_b[k], np.nan) if cf_b else None,
                    confidence,
                )
                for k, v in cf_p.items()
            },
        }
        for key, src in (("S", "rms"), ("S_par", "rms_par"), ("S_perp", "rms_perp")):
            calibrated[key] = _interval(
                mean_over_bins(cf_p[src], use), mean_over_bins(cf_b[src], use) if cf_b else None,
                confidence,
            )  # fmt: skip
        worst = np.where(use, cf_p["closure"], np.nan)
        calibrated["max_closure"] = _clean(np.nanmax(worst)) if use.any() else None
        calibrated["curve"] = {
            "truth": [round(float(x), 4) for x in curve.truth],
            "estimate": [round(float(x), 4) for x in curve.estimate],
        }
    out["calibrated"] = calibrated
    return out


def _fake_task(
    magnitude: np.ndarray,
    truth_mag: np.ndarray,
    neutrinos: np.ndarray,
    process: np.ndarray,
    counts: np.ndarray | None,
    confidence: float,
) -> dict[str, Any] | None:
    """AUC and fake rate of |e| for the processes without neutrinos (see the module docstring)."""
    background = ~neutrinos
    signal = neutrinos & (truth_mag > FAKE_SIGNAL_MIN_TRUTH)
    reference = neutrinos & (truth_mag > FAKE_THRESHOLD_MIN_TRUTH)
    if not background.any() or not signal.any() or not reference.any():
        return None
    groups = {"all": background}
    for name in sorted(set(np.asarray(process)[background].tolist())):
        groups[name] = background & (process == name)
    out: dict[str, Any] = {
        "n_signal": int(signal.sum()),
        "n_reference": int(reference.sum()),
        "definition": {
            "signal_min_truth": FAKE_SIGNAL_MIN_TRUTH,
            "efficiency": FAKE_EFFICIENCY,
            "threshold_min_truth": FAKE_THRESHOLD_MIN_TRUTH,
        },
        "groups": {},
    }
    mag_s, mag_r = magnitude[signal], magnitude[reference]
    ones = np.ones((len(magnitude), 1), np.uint8)
    # the threshold depends on the neutrino events only: once for all backgrounds
    thr_p = fake_threshold(mag_r, ones[reference])
    thr_b = fake_threshold(mag_r, counts[reference]) if counts is not None else None
    for name, bg in groups.items():
        mag_b = magnitude[bg]
        auc_p = weighted_roc_auc(mag_s, mag_b, ones[signal], ones[bg])[0]
        rate_p = fraction_above(mag_b, ones[bg], thr_p)
        auc_b = rate_b = None
        if counts is not None and thr_b is not None:
            counts_bg = counts[bg]
            # the AUC's interval for all backgrounds together; each process its point value
            if name == "all":
                auc_b = weighted_roc_auc(mag_s, mag_b, counts[signal], counts_bg)
            rate_b = fraction_above(mag_b, counts_bg, thr_b)
        out["groups"][name] = {
            "n": int(bg.sum()),
            "auc": _interval(auc_p, auc_b, confidence),
            "threshold": _interval(thr_p[0], thr_b, confidence),
            "fake_rate": _interval(rate_p[0], rate_b, confidence),
        }
    return out


def score(
    met: np.ndarray,
    truth: Truth,
    covariance: np.ndarray | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    recoil: RecoilSample | None = None,
    calibration: CalibrationSample | None = None,
    recoil_reason: str | None = None,
    dof: np.ndarray | None = None,
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
        Bootstrap seed; the multiplicities depend on it and on each event's id only.
    confidence
        Central confidence level of the intervals.
    recoil
        The recoil task's events (muon-removed estimates and dimuon qT), or None.
    calibration
        Validation-split estimates and truth for the calibrated figures, or None.
    recoil_reason
        Why there is no recoil task (recorded when ``recoil`` is None).
    dof
        Optional ``(n,)`` degrees of freedom of a Student t error model with ``covariance``
        (:func:`metbench.scoring.metrics.gaussian_equivalent_chi2`); None: Gaussian.

    Returns
    -------
    dict
        JSON-ready: ``headline`` (S of the MET task with its interval, bootstrap replicas and
        whether it is ranked), ``tasks.met``, ``tasks.fake``, ``tasks.recoil`` and
        ``covariance`` (see the module docstring).

    Notes
    -----
    BLAS runs on one thread here: the resampled sums are many small float64 products, which a
    multi-threaded BLAS slows down (measured: 5.9 s against 0.2 s for the MET task's cell sums
    on a loaded 2-core machine); the figures do not depend on the thread count.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _score(
            met, truth, covariance, n_boot, seed, confidence, recoil, calibration, recoil_reason,
            dof,
        )  # fmt: skip


def _score(
    met: np.ndarray,
    truth: Truth,
    covariance: np.ndarray | None,
    n_boot: int,
    seed: int,
    confidence: float,
    recoil: RecoilSample | None,
    calibration: CalibrationSample | None,
    recoil_reason: str | None,
    dof: np.ndarray | None = None,
) -> dict[str, Any]:
    """:func:`score` (its BLAS threads limited)."""
    met = np.asarray(met, dtype=np.float64)
    if met.shape != (len(truth), 2):
        raise ScoringError(f"MET estimates have shape {met.shape}, expected ({len(truth)}, 2)")
    if n_boot and n_boot < 200:
        raise ScoringError(f"use at least 200 bootstrap resamples (got {n_boot}) or none")
    t_met = np.stack([truth.gen_met_x, truth.gen_met_y], 1).astype(np.float64)
    counts = event_poisson_counts(truth.event_id, n_boot, seed) if n_boot else None
    nu = has_neutrinos(truth.process)
    out: dict[str, Any] = {
        "n_events": len(truth),
        "n_boot": n_boot,
        "seed": seed,
        "confidence": confidence,
        "resampling": "poisson-by-event-id",
        "definition": {
            "edges": list(HEADLINE_EDGES),
            "min_bin_events": MIN_BIN_EVENTS,
            "min_mean_truth": MIN_MEAN_TRUTH,
            "min_response": MIN_RESPONSE,
            "no_neutrino_processes": list(NO_INVISIBLE_PROCESSES),
        },
        "tasks": {},
    }
    curve = curve_reason = None
    if calibration is None:
        curve_reason = "no validation-split predictions"
    else:
        ct = np.hypot(calibration.truth[:, 0], calibration.truth[:, 1])
        ce, ct2 = calibration.estimate, calibration.truth
        cc = components(ce[:, 0], ce[:, 1], ct2[:, 0], ct2[:, 1])
        curve = fit_response_curve(ct, cc.par, CMS_QT_EDGES, MIN_BIN_EVENTS)
        if curve is None:
            curve_reason = "the validation response curve has < 2 bins with a positive response"
    if nu.any():
        idx = np.flatnonzero(nu)
        out["tasks"]["met"] = _resolution_task(
            met[idx], t_met[idx], truth.n_pu[idx], truth.n_pv[idx], truth.process[idx],
            counts[idx] if counts is not None else None, confidence, curve, curve_reason,
        )  # fmt: skip
        head = out["tasks"]["met"]["headline"]
        out["headline"] = {
            "task": HEADLINE[0],
            "figure": HEADLINE[1],
            **head["S"],
            "ranked": head["ranked"],
            "reason": head["reason"],
        }
    else:
        out["headline"] = {
            "task": HEADLINE[0],
            "figure": HEADLINE[1],
            "value": None,
            "ranked": False,
            "reason": "no events of a process with neutrinos",
        }
    fake = _fake_task(
        np.hypot(met[:, 0], met[:, 1]), np.hypot(t_met[:, 0], t_met[:, 1]), nu,
        np.asarray(truth.process).astype(str), counts, confidence,
    )  # fmt: skip
    if fake is not None:
        out["tasks"]["fake"] = fake
    if recoil is not None and len(recoil.index):
        idx = np.asarray(recoil.index)
        rcurve = None
        r_reason: str | None = "no validation-split predictions"
        if calibration is not None and calibration.recoil_estimate is not None:
            assert calibration.recoil_qt is not None
            re_, rq = calibration.recoil_estimate, calibration.recoil_qt
            rc = components(re_[:, 0], re_[:, 1], rq[:, 0], rq[:, 1])
            rcurve = fit_response_curve(rc.truth, rc.par, CMS_QT_EDGES, MIN_BIN_EVENTS)
            r_reason = (
                None
                if rcurve is not None
                else "the validation recoil response curve has < 2 bins with a positive response"
            )
        out["tasks"]["recoil"] = _resolution_task(
            np.asarray(recoil.estimate, np.float64), np.asarray(recoil.qt, np.float64),
            truth.n_pu[idx], truth.n_pv[idx], None,
            counts[idx] if counts is not None else None, confidence, rcurve, r_reason,
        )  # fmt: skip
    elif recoil_reason is not None:
        out["recoil_reason"] = recoil_reason
    if covariance is not None:
        out["covariance"] = covariance_figures(met, t_met, covariance, nu, dof)
    return out
