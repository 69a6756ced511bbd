"""The headline S, its resamples, the calibrated figures and the fake-MET task, each against an
independent computation, and the tricks S must not reward."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metbench.scoring.bootstrap import event_poisson_counts
from metbench.scoring.metrics import (
    HEADLINE_EDGES,
    MIN_BIN_EVENTS,
    fit_response_curve,
    roc_auc,
)
from metbench.scoring.score import CalibrationSample, Truth, score


def make_truth(t, process=None, n_pu=None, ids=None):
    n = len(t)
    return Truth(
        event_id=np.asarray(ids if ids is not None else np.arange(n) * 7 + 11, dtype=np.int64),
        process=np.asarray(process if process is not None else ["ttbar_2l2nu"] * n),
        n_pu=np.asarray(n_pu if n_pu is not None else np.arange(n) % 60, dtype=np.int64),
        n_pv=np.asarray((np.arange(n) % 60) * 0.7, dtype=np.int64),
        gen_met_x=np.asarray(t[:, 0], float),
        gen_met_y=np.asarray(t[:, 1], float),
        gen_qt_x=np.full(n, np.nan),
        gen_qt_y=np.full(n, np.nan),
    )


def sample(n=20_000, seed=0, response=0.85, sigma=20.0):
    """True MET falling like a spectrum, an estimate with a response and a resolution."""
    rng = np.random.default_rng(seed)
    mag = rng.exponential(60.0, n) + 5
    phi = rng.uniform(-np.pi, np.pi, n)
    t = np.stack([mag * np.cos(phi), mag * np.sin(phi)], 1)
    e = response * t + rng.normal(0, sigma, (n, 2))
    return e, t


def s_by_hand(e, t, weights=None):
    """S from its definition, one bin at a time (an independent loop over the bins)."""
    w = np.ones(len(e)) if weights is None else np.asarray(weights, float)
    mag = np.hypot(t[:, 0], t[:, 1])
    edges = [*HEADLINE_EDGES, np.inf]
    sigmas = []
    for lo, hi in itertools.pairwise(edges):
        sel = (mag >= lo) & (mag < hi)
        if sel.sum() < MIN_BIN_EVENTS:  # the bins are chosen on the data, not the resample
            continue
        ws, es, ts, ms = w[sel], e[sel], t[sel], mag[sel]
        unit = ts / ms[:, None]
        par = (es * unit).sum(1)
        response = (ws * par).sum() / (ws * ms).sum()
        r = es / response - ts
        sigmas.append(np.sqrt((ws * (r**2).sum(1)).sum() / ws.sum() / 2))
    return float(np.mean(sigmas))


def test_s_equals_an_independent_loop():
    e, t = sample()
    met = score(e, make_truth(t), n_boot=0)["tasks"]["met"]
    head = met["headline"]
    assert head["S"]["value"] == pytest.approx(s_by_hand(e, t), rel=1e-10)
    assert head["ranked"] and head["reason"] is None
    # the parts combine bin by bin: sigma_k^2 = (sigma_par,k^2 + sigma_perp,k^2) / 2
    f = met["bins"]["truth"]["figures"]
    for s_k, p_k, q_k, used in zip(
        f["rc_sigma"]["value"], f["rc_sigma_par"]["value"], f["rc_sigma_perp"]["value"],
        met["bins"]["truth"]["in_headline"], strict=True,
    ):  # fmt: skip
        if used:
            assert s_k == pytest.approx(np.sqrt((p_k**2 + q_k**2) / 2), rel=1e-12)
    assert head["n_bins"] == sum(met["bins"]["truth"]["in_headline"])


def test_each_replica_is_s_of_its_resample():
    e, t = sample(n=6000, seed=1)
    truth = make_truth(t)
    head = score(e, truth, n_boot=200, seed=5)["tasks"]["met"]["headline"]
    counts = event_poisson_counts(truth.event_id, 200, seed=5)
    for b in (0, 17, 199):
        assert head["replicas"][b] == pytest.approx(s_by_hand(e, t, counts[:, b]), rel=1e-5)
    assert head["S"]["low"] < head["S"]["value"] < head["S"]["high"]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(50, 3000), boot_seed=st.integers(0, 100))
def test_multiplicities_depend_on_the_event_id_only(seed, n, boot_seed):
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**12, size=n, replace=False)
    full = event_poisson_counts(ids, 200, boot_seed)
    order = rng.permutation(n)[: n // 2]
    np.testing.assert_array_equal(event_poisson_counts(ids[order], 200, boot_seed), full[order])


def test_multiplicities_are_poisson_one_and_independent():
    c = event_poisson_counts(np.arange(50_000) * 3 + 1, 200, seed=0).astype(float)
    assert c.mean() == pytest.approx(1.0, abs=0.005)
    assert c.var() == pytest.approx(1.0, abs=0.01)
    assert np.mean(c == 0) == pytest.approx(np.exp(-1), abs=0.003)
    # neighbouring ids and neighbouring resamples are uncorrelated
    assert abs(np.corrcoef(c[:-1].ravel(), c[1:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(c[:, :-1].ravel(), c[:, 1:].ravel())[0, 1]) < 0.01
    # another seed, other resamples
    other = event_poisson_counts(np.arange(50_000) * 3 + 1, 200, seed=1).astype(float)
    assert abs(np.corrcoef(c.ravel(), other.ravel())[0, 1]) < 0.01


def _s(e, t, **kw):
    return score(e, make_truth(t), n_boot=0, **kw)["tasks"]["met"]["headline"]


@pytest.mark.parametrize("threshold", [30.0, 50.0, 80.0, 120.0])
def test_zeroing_below_a_threshold_makes_s_worse(threshold):
    e, t = sample(seed=2)
    honest = _s(e, t)["S"]["value"]
    mag = np.hypot(e[:, 0], e[:, 1])
    gamed = np.where((mag < threshold)[:, None], 0.0, e)
    head = _s(gamed, t)
    assert head["S"]["value"] is None or head["S"]["value"] > honest


@pytest.mark.parametrize("softness", [5.0, 20.0, 60.0])
def test_shrinking_where_unsure_makes_s_worse(softness):
    """Scale each estimate by a confidence of the estimator's making, |e| / (|e| + c): small
    estimates shrink most. The quantile width of e_perp gets better under it; S gets worse."""
    e, t = sample(seed=3)
    honest = _s(e, t)
    mag = np.hypot(e[:, 0], e[:, 1])
    gamed = e * (mag / (mag + softness))[:, None]
    head = _s(gamed, t)
    assert head["S"]["value"] > honest["S"]["value"]
    if softness >= 20:  # the trick that CMS's quantile figure rewards
        assert head["cms_sigma_perp_over_r"]["value"] < honest["cms_sigma_perp_over_r"]["value"]


def test_a_global_scale_changes_nothing_and_an_offset_costs():
    e, t = sample(seed=4)
    honest = _s(e, t)["S"]["value"]
    assert _s(0.5 * e, t)["S"]["value"] == pytest.approx(honest, rel=1e-9)
    assert _s(e + 10.0, t)["S"]["value"] > honest


def test_negative_response_and_zero_estimates_are_unranked():
    e, t = sample(n=5000, seed=5)
    for bad, why in ((-e, "reaches 0 or lies below"), (np.zeros_like(e), "reaches 0 or lies")):
        res = score(bad, make_truth(t), n_boot=200)
        head = res["headline"]
        assert head["value"] is None and not head["ranked"]
        assert why in head["reason"]
        assert res["tasks"]["met"]["headline"]["replicas"] is None
    # a response of 0.05 is below the floor of 0.1
    head = score(0.05 * e + 0.0, make_truth(t), n_boot=200)["headline"]
    assert not head["ranked"] and "0.1" in head["reason"]


def test_response_is_not_reported_below_20_gev():
    e, t = sample(seed=6)
    truth_bins = score(e, make_truth(t), n_boot=0)["tasks"]["met"]["bins"]["truth"]
    mean_truth = truth_bins["figures"]["mean_truth"]["value"]
    for mt, r, s_over_r in zip(
        mean_truth,
        truth_bins["figures"]["response"]["value"],
        truth_bins["figures"]["sigma_perp_over_r"]["value"],
        strict=True,
    ):
        if mt is not None and mt < 20:
            assert r is None and s_over_r is None
        elif mt is not None:
            assert r is not None


def test_processes_without_neutrinos_leave_s_and_enter_the_fake_task():
    rng = np.random.default_rng(7)
    e, t = sample(n=8000, seed=7)
    n_bg = 4000
    t_bg = np.zeros((n_bg, 2))
    e_bg = rng.normal(0, 25, (n_bg, 2))
    process = np.array(["ttbar_2l2nu"] * len(t) + ["qcd_multijet"] * 2000 + ["z_mumu"] * 2000)
    res = score(np.vstack([e, e_bg]), make_truth(np.vstack([t, t_bg]), process), n_boot=200)
    assert res["headline"]["value"] == pytest.approx(s_by_hand(e, t), rel=1e-10)
    assert res["tasks"]["met"]["n_events"] == len(t)
    fake = res["tasks"]["fake"]["groups"]
    mag_s = np.hypot(e[:, 0], e[:, 1])
    mag_b = np.hypot(e_bg[:, 0], e_bg[:, 1])
    t_mag = np.hypot(t[:, 0], t[:, 1])
    assert fake["all"]["auc"]["value"] == pytest.approx(roc_auc(mag_s[t_mag > 50], mag_b))
    # the threshold keeps 90% of the events with |t| > 100 GeV
    reference = np.sort(mag_s[t_mag > 100])
    threshold = reference[int(np.ceil(0.1 * len(reference))) - 1]
    assert fake["all"]["threshold"]["value"] == threshold
    assert fake["all"]["fake_rate"]["value"] == pytest.approx(np.mean(mag_b > threshold))
    assert fake["qcd_multijet"]["fake_rate"]["value"] == pytest.approx(
        np.mean(mag_b[:2000] > threshold)
    )
    assert fake["all"]["auc"]["low"] < fake["all"]["auc"]["value"] < fake["all"]["auc"]["high"]


def test_calibration_closes_and_keeps_the_resolution():
    e, t = sample(n=30_000, seed=8, response=0.7)
    e_val, t_val = sample(n=30_000, seed=9, response=0.7)
    met = score(e, make_truth(t), n_boot=0, calibration=CalibrationSample(e_val, t_val))
    cal = met["tasks"]["met"]["calibrated"]
    assert cal["available"] and cal["reason"] is None
    assert cal["max_closure"] < 0.05  # response within 5% of 1 in every bin of S
    head = met["tasks"]["met"]["headline"]
    # calibrated RMS (no per-bin correction) is close to S (per-bin correction)
    assert cal["S"]["value"] == pytest.approx(head["S"]["value"], rel=0.1)
    # without validation predictions, the reason is given
    plain = score(e, make_truth(t), n_boot=0)["tasks"]["met"]["calibrated"]
    assert not plain["available"] and "validation" in plain["reason"]


def test_response_curve_is_monotone_and_inverts():
    rng = np.random.default_rng(10)
    mag = rng.uniform(0, 400, 50_000)
    par = 0.6 * mag + 10 * np.sin(mag / 20) + rng.normal(0, 3, len(mag))  # wiggles: not monotone
    curve = fit_response_curve(mag, par, (0, 20, 40, 60, 80, 100, 150, 200, 300), 20)
    assert curve is not None
    assert np.all(np.diff(curve.estimate) > 0) and np.all(np.diff(curve.truth) > 0)
    # a point on the curve is mapped to its truth
    k = len(curve.truth) // 2
    e = np.array([[curve.estimate[k], 0.0]])
    np.testing.assert_allclose(curve.calibrate(e)[0, 0], curve.truth[k])
    assert fit_response_curve(mag, -par, (0, 100, 200), 20) is None  # negative: no inversion


def test_response_curve_starts_at_the_first_positive_knot():
    """An estimator predicting ~0 (here slightly negative) below 5 GeV of true MET, as METNet
    does on the standard validation split, still gets its calibrated figures."""
    e, t = sample(n=30_000, seed=11, response=0.7)
    mag = np.hypot(t[:, 0], t[:, 1])
    low = mag < 10
    e[low] = -0.2 * t[low]
    c = (e * t).sum(1) / mag
    curve = fit_response_curve(mag, c, (0, 10, 20, 30, 50, 80, 120, 200), 20)
    assert curve is not None and curve.estimate[0] > 0 and curve.truth[0] > 10
    e_val, t_val = sample(n=30_000, seed=12, response=0.7)
    v_low = np.hypot(t_val[:, 0], t_val[:, 1]) < 10
    e_val[v_low] = -0.2 * t_val[v_low]
    cal = score(e, make_truth(t), n_boot=0, calibration=CalibrationSample(e_val, t_val))
    cal = cal["tasks"]["met"]["calibrated"]
    assert cal["available"] and cal["max_closure"] < 0.05


def test_auc_replicas_follow_the_resampled_auc():
    """The AUC's bootstrap is its first-order expansion in the weights (DeLong's placements):
    each replica is within a small fraction of the bootstrap spread of the exact resampled AUC."""
    from metbench.scoring.metrics import weighted_roc_auc

    rng = np.random.default_rng(11)
    s, b = rng.normal(1.0, 1.0, 4000), rng.normal(0.0, 1.2, 3000)
    ws, wb = rng.poisson(1, (4000, 40)), rng.poisson(1, (3000, 40))
    approx = weighted_roc_auc(s, b, ws, wb)
    exact = np.array([roc_auc(np.repeat(s, ws[:, k]), np.repeat(b, wb[:, k])) for k in range(40)])
    assert np.max(np.abs(approx - exact)) < 0.1 * np.std(exact)
    assert np.std(approx) == pytest.approx(np.std(exact), rel=0.05)
