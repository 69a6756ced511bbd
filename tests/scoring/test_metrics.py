"""Scoring against hand computations, NumPy's own quantiles and symmetry properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metbench.scoring.binning import CMS_QT_EDGES, edge_binning, quantile_edges
from metbench.scoring.bootstrap import (
    GroupedSample,
    grouped_statistics,
    poisson_counts,
    quantile_key,
)
from metbench.scoring.metrics import (
    CHI2_2DOF_1SIGMA,
    components,
    covariance_figures,
    pileup_fit,
    roc_auc,
)
from metbench.scoring.score import (
    RecoilSample,
    ScoringError,
    Truth,
    align_predictions,
    score,
)


def make_truth(tx, ty, process=None, n_pu=None, qx=None, qy=None):
    n = len(tx)
    return Truth(
        event_id=np.arange(n, dtype=np.int64) + 100,
        process=np.asarray(process if process is not None else ["ttbar_2l2nu"] * n),
        n_pu=np.asarray(n_pu if n_pu is not None else np.arange(n) % 50, dtype=np.int64),
        n_pv=np.asarray((np.arange(n) % 50) * 0.7, dtype=np.int64),
        gen_met_x=np.asarray(tx, float),
        gen_met_y=np.asarray(ty, float),
        gen_qt_x=np.asarray(qx if qx is not None else np.full(n, np.nan), float),
        gen_qt_y=np.asarray(qy if qy is not None else np.full(n, np.nan), float),
    )


def test_hand_computed_example():
    # truths along +x, +y and -x; estimates chosen so that each projection is easy by hand
    t = np.array([[30.0, 0.0], [0.0, 40.0], [-50.0, 0.0], [60.0, 0.0]])
    e = np.array([[32.0, 3.0], [-1.0, 35.0], [-53.0, -6.0], [60.0, 4.0]])
    # e_par = (32, 35, 53, 60); |t| = (30, 40, 50, 60); e_perp = t_x e_y - t_y e_x with t_hat
    # -> (3, 1, 6, 4)  (for t_hat = (-1, 0): -1 * -6 - 0 = 6; for (0, 1): 0*35 - 1*(-1) = 1)
    c = components(e[:, 0], e[:, 1], t[:, 0], t[:, 1])
    np.testing.assert_allclose(c.par, [32, 35, 53, 60])
    np.testing.assert_allclose(c.perp, [3, 1, 6, 4])
    np.testing.assert_allclose(c.truth, [30, 40, 50, 60])
    np.testing.assert_allclose(c.residual, np.hypot([2, -1, -3, 0], [3, -5, -6, 4]))
    r = score(e, make_truth(t[:, 0], t[:, 1]), n_boot=0)["tasks"]["met"]["overall"]
    d_par = np.array([2.0, -5.0, 3.0, 0.0])
    assert r["n"]["value"] == 4
    assert r["response"]["value"] == pytest.approx((32 + 35 + 53 + 60) / 180)
    assert r["bias"]["value"] == pytest.approx(0.0)
    assert r["rms_par"]["value"] == pytest.approx(np.sqrt(np.mean(d_par**2)))
    assert r["rms_perp"]["value"] == pytest.approx(np.std([3, 1, 6, 4]))
    # inverted-CDF quantiles of 4 values: P16 is the 1st sorted value, P84 the 4th
    assert r["sigma_par"]["value"] == pytest.approx((3 - (-5)) / 2)
    assert r["sigma_perp"]["value"] == pytest.approx((6 - 1) / 2)
    assert r["sigma_perp_over_r"]["value"] == pytest.approx(2.5 / 1.0)
    assert r["tail_25"]["value"] == 0.0


def test_recoil_response_is_minus_u_par_over_qt():
    rng = np.random.default_rng(4)
    n = 4000
    qt = rng.uniform(30, 200, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    q = np.stack([qt * np.cos(phi), qt * np.sin(phi)], 1)
    u = -0.8 * q + rng.normal(0, 5, (n, 2))  # the recoil balances 80% of the boson
    truth = make_truth(np.zeros(n), np.zeros(n), ["z_mumu"] * n)
    recoil = RecoilSample(np.arange(n), -u, q)  # the estimate on the muon-removed event: -u
    res = score(np.zeros((n, 2)), truth, n_boot=0, recoil=recoil)["tasks"]["recoil"]["overall"]
    u_par = (u * q).sum(1) / qt
    assert res["response"]["value"] == pytest.approx(-u_par.mean() / qt.mean(), rel=1e-9)
    assert res["response"]["value"] == pytest.approx(0.8, abs=0.01)
    u_perp = (q[:, 0] * u[:, 1] - q[:, 1] * u[:, 0]) / qt
    # e = -u, so the perpendicular component scored is -u_perp
    expected = np.diff(np.percentile(-u_perp, [16, 84], method="inverted_cdf"))[0] / 2
    assert res["sigma_perp"]["value"] == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(3, 400),
    n_groups=st.integers(1, 6),
    seed=st.integers(0, 2**31),
    p=st.sampled_from([0.16, 0.84, 0.5, 0.05]),
)
def test_point_quantiles_and_sums_match_numpy(n, n_groups, seed, p):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=n), 2)  # ties included
    group = rng.integers(-1, n_groups, n)
    sample = GroupedSample(group, n_groups, {"x": x}, {"x": x}, (p,))
    point, _ = grouped_statistics(sample)
    for g in range(n_groups):
        sel = x[group == g]
        assert point["x"][g] == pytest.approx(sel.sum())
        if len(sel):
            assert point[quantile_key("x", p)][g] == np.percentile(
                sel, 100 * p, method="inverted_cdf"
            )
        else:
            assert np.isnan(point[quantile_key("x", p)][g])


@pytest.mark.parametrize("n", [50, 30_000])
def test_bootstrap_matches_a_direct_weighted_computation(n):
    """The windowed quantile and matrix-product sums equal a from-scratch computation with the
    same multiplicities, resample by resample."""
    rng = np.random.default_rng(n)
    x = rng.standard_cauchy(n)  # heavy tails: a stress for the window
    y = rng.normal(size=n)
    group = (rng.random(n) < 0.7).astype(np.int64)
    n_boot = 200
    counts = poisson_counts(np.random.default_rng(1), (n_boot, n))
    sample = GroupedSample(group, 2, {"y": y, "one": np.ones(n)}, {"x": x})
    _, boot = grouped_statistics(sample, n_boot, counts=counts)
    order = np.argsort(
        group, kind="stable"
    )  # counts column j belongs to the j-th event in group order
    w = np.empty_like(counts)
    w[:, order] = counts
    for g in (0, 1):
        sel = group == g
        np.testing.assert_allclose(boot["y"][:, g], w[:, sel] @ y[sel], rtol=1e-5, atol=1e-3)
        np.testing.assert_array_equal(boot["one"][:, g], w[:, sel].sum(1))
        xs = x[sel]
        srt = np.argsort(xs)
        for r in range(0, n_boot, 7):
            cum = np.cumsum(w[r, sel][srt])
            for p in (0.16, 0.84):
                expected = xs[srt][np.searchsorted(cum, p * cum[-1])]
                assert boot[quantile_key("x", p)][r, g] == expected


def test_poisson_multiplicities_have_mean_and_variance_one():
    c = poisson_counts(np.random.default_rng(0), (100, 20_000)).astype(float)
    assert c.mean() == pytest.approx(1.0, abs=0.005)
    assert c.var() == pytest.approx(1.0, abs=0.01)
    assert np.mean(c == 0) == pytest.approx(np.exp(-1), abs=0.003)


def test_bootstrap_interval_has_the_width_of_the_standard_error():
    rng = np.random.default_rng(5)
    n = 20_000
    t = np.stack([rng.uniform(50, 150, n), np.zeros(n)], 1)
    e = t + rng.normal(0, 10, (n, 2))
    res = score(e, make_truth(t[:, 0], t[:, 1]), n_boot=400, seed=3)["tasks"]["met"]["overall"]
    bias = res["bias"]
    half = (bias["high"] - bias["low"]) / 2
    assert half == pytest.approx(1.96 * 10 / np.sqrt(n), rel=0.2)
    assert bias["low"] < bias["value"] < bias["high"]
    s = res["sigma_perp"]
    assert s["low"] < 10.0 < s["high"] or abs(s["value"] - 10) < 3 * (s["high"] - s["low"])


def test_same_seed_same_intervals_other_seed_other_intervals():
    rng = np.random.default_rng(6)
    t = rng.normal(0, 50, (3000, 2))
    e = t + rng.normal(0, 10, (3000, 2))
    truth = make_truth(t[:, 0], t[:, 1])
    a = score(e, truth, seed=1)["tasks"]["met"]["overall"]["sigma_perp"]
    b = score(e, truth, seed=1)["tasks"]["met"]["overall"]["sigma_perp"]
    c = score(e, truth, seed=2)["tasks"]["met"]["overall"]["sigma_perp"]
    assert a == b and a["value"] == c["value"] and (a["low"], a["high"]) != (c["low"], c["high"])


@settings(max_examples=25, deadline=None)
@given(angle=st.floats(-np.pi, np.pi), mirror=st.booleans(), seed=st.integers(0, 1000))
def test_figures_are_rotation_and_reflection_invariant(angle, mirror, seed):
    rng = np.random.default_rng(seed)
    n = 600
    t = rng.normal(0, 60, (n, 2))
    e = 0.9 * t + rng.normal(0, 15, (n, 2))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if mirror:
        rot = rot @ np.diag([1.0, -1.0])
    base = score(e, make_truth(t[:, 0], t[:, 1]), n_boot=0)["tasks"]["met"]
    t2, e2 = t @ rot.T, e @ rot.T
    moved = score(e2, make_truth(t2[:, 0], t2[:, 1]), n_boot=0)["tasks"]["met"]
    for key in ("sigma_par", "rms_par", "rms_perp", "bias", "mean_truth", "response"):
        assert moved["overall"][key]["value"] == pytest.approx(
            base["overall"][key]["value"], rel=1e-9, abs=1e-9
        )
    for key in ("S", "S_par", "S_perp"):
        assert moved["headline"][key]["value"] == pytest.approx(
            base["headline"][key]["value"], rel=1e-9
        )


def test_pileup_fit_recovers_the_noise_terms():
    n_pu = np.array([5.0, 15, 25, 35, 45, 55])
    a, b = 8.0, 2.5
    fa, fb = pileup_fit(n_pu, np.sqrt(a**2 + b**2 * n_pu), np.full(6, 1000))
    assert fa == pytest.approx(a) and fb == pytest.approx(b)
    # through score(): the residual RMS per component grows as sigma^2 = 36 + 4 n_pu, so S in
    # n_pu bins follows it, and extrapolates to sqrt(36 + 4 * 200) at n_pu = 200
    rng = np.random.default_rng(7)
    n = 60_000
    pu = rng.integers(0, 80, n)
    t = np.stack([rng.uniform(30, 100, n), np.zeros(n)], 1)
    e = t + rng.normal(0, 1, (n, 2)) * np.sqrt(36 + 4 * pu)[:, None]
    fit = score(e, make_truth(t[:, 0], t[:, 1], n_pu=pu), n_boot=200)["tasks"]["met"]
    fit = fit["pileup_fit"]["S"]
    assert fit["b"]["low"] < 2.0 < fit["b"]["high"]
    assert fit["a"]["value"] == pytest.approx(6.0, abs=0.8)
    ext = fit["extrapolated"]
    assert ext["low"] < np.sqrt(36 + 800) < ext["high"]
    assert fit["at_n_pu"] == 200


def test_bins_use_cms_edges_and_quantile_n_pu_bins():
    b = edge_binning("truth", np.array([0.0, 4.9, 5.0, 349.0, 350.0, 1e4, np.nan]), CMS_QT_EDGES)
    np.testing.assert_array_equal(b.index, [0, 0, 1, 17, 18, 18, -1])
    assert b.labels[0] == "[0, 5)" and b.labels[-1] == "[350, inf)"
    edges = quantile_edges(np.arange(100), 5)
    assert edges == (0.0, 20.0, 40.0, 60.0, 80.0)


def test_covariance_figures_of_a_correct_covariance():
    rng = np.random.default_rng(8)
    n = 20_000
    t = rng.normal(0, 30, (n, 2))
    sx, sy, rho = rng.uniform(5, 20, n), rng.uniform(5, 20, n), rng.uniform(-0.5, 0.5, n)
    cov = np.empty((n, 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = sx**2, sy**2
    cov[:, 0, 1] = cov[:, 1, 0] = rho * sx * sy
    has_inv = rng.random(n) < 0.5
    t[~has_inv] = 0.0  # no invisible particles: true MET zero
    e = t + np.einsum("nij,nj->ni", np.linalg.cholesky(cov), rng.normal(size=(n, 2)))
    f = covariance_figures(e, t, cov, has_inv)
    assert f["pull_width_1"] == pytest.approx(1.0, abs=0.03)
    assert f["pull_width_2"] == pytest.approx(1.0, abs=0.03)
    assert f["coverage_1sigma"] == pytest.approx(0.6827, abs=0.015)
    assert f["coverage_2sigma"] == pytest.approx(0.9545, abs=0.01)
    assert pytest.approx(2.2957, abs=1e-3) == CHI2_2DOF_1SIGMA
    # a covariance twice too large covers too much
    assert covariance_figures(e, t, 4 * cov, has_inv)["coverage_1sigma"] > 0.9


def test_roc_auc_by_hand():
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert roc_auc(np.array([1.0, 3.0]), np.array([2.0])) == 0.5


def test_alignment_errors():
    truth = make_truth(np.zeros(3), np.zeros(3))
    ids = truth.event_id
    np.testing.assert_array_equal(align_predictions(ids[::-1], truth, "p"), [2, 1, 0])
    with pytest.raises(ScoringError, match="1 of 3 events have no prediction"):
        align_predictions(ids[:2], truth, "p")
    with pytest.raises(ScoringError, match="more than once"):
        align_predictions(np.array([ids[0], ids[0], ids[1]]), truth, "p")
    with pytest.raises(ScoringError, match="not in the dataset split"):
        align_predictions(np.append(ids, 7), truth, "p")
