"""metbench.scoring.pulls: the covariance's calibration in bins, and the whitening and pull
figures it shares with the scoring (metbench.scoring.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from metbench.errors import MetbenchError
from metbench.scoring.metrics import (
    covariance_figures,
    gaussian_equivalent_chi2,
    pull_kurtosis,
    whitened_residuals,
)
from metbench.scoring.pulls import predicted_sigma, pulls_in_bins


def _rotation(phi: np.ndarray) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _ellipses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random covariances (semi-axes 1-50 GeV, any orientation) and their square roots."""
    axes = rng.uniform(1.0, 50.0, (n, 2))
    rot = _rotation(rng.uniform(-np.pi, np.pi, n))
    root = rot * axes[:, None, :]  # R diag(a, b): root @ root^T = R diag(a^2, b^2) R^T
    return root @ np.swapaxes(root, 1, 2), root


def test_whitening_undoes_the_covariance_the_errors_were_drawn_with():
    rng = np.random.default_rng(1)
    cov, root = _ellipses(rng, 1000)
    u = rng.normal(size=(1000, 2))
    t = rng.normal(0.0, 50.0, (1000, 2))
    e = t + (root @ u[..., None])[..., 0]
    _, chi2 = whitened_residuals(e, t, cov)
    # z is u up to a rotation (root is another square root of cov than Cholesky's): same chi2
    np.testing.assert_allclose(chi2, (u**2).sum(1), rtol=1e-10)
    # with the lower-triangular root the whitened residual is u itself
    lower = np.linalg.cholesky(cov)
    z, _ = whitened_residuals(t + (lower @ u[..., None])[..., 0], t, cov)
    np.testing.assert_allclose(z, u, atol=1e-9)


def test_predicted_sigma_is_the_geometric_mean_of_the_ellipse_axes():
    rng = np.random.default_rng(2)
    axes = rng.uniform(1.0, 50.0, (100, 2))
    rot = _rotation(rng.uniform(-np.pi, np.pi, 100))
    cov = rot @ (np.eye(2) * axes[:, None, :] ** 2) @ np.swapaxes(rot, 1, 2)
    np.testing.assert_allclose(predicted_sigma(cov), np.sqrt(axes[:, 0] * axes[:, 1]), rtol=1e-10)


def test_a_right_covariance_is_calibrated_in_every_bin():
    rng = np.random.default_rng(3)
    n = 100_000
    cov, root = _ellipses(rng, n)
    t = np.zeros((n, 2))
    e = (root @ rng.normal(size=(n, 2, 1)))[..., 0]
    table = pulls_in_bins(e, t, cov, np.array(["a"] * n), by="sigma", n_bins=5)
    assert list(table["n"]) == [n // 5] * 5
    assert np.all(np.diff(table["sigma"]) > 0)  # deciles in order of the predicted sigma
    for col, target, tol in (("pull_width_1", 1.0, 0.02), ("pull_width_2", 1.0, 0.02),
                             ("coverage_1sigma", 0.6827, 0.01), ("coverage_2sigma", 0.9545, 0.005),
                             ("pull_kurtosis", 3.0, 0.15)):  # fmt: skip
        assert np.all(np.abs(table[col] - target) < tol), (col, table[col])


def test_a_scale_mixture_looks_right_pooled_and_is_wrong_in_each_process():
    """Process a's errors are 1.3x the claimed sigma, b's 0.557x: pooled, the pull width is
    sqrt((1.3^2 + 0.557^2) / 2) = 1.00, but the 1-sigma coverage is the average of the two
    processes' 1 - exp(-2.2958 / (2 w^2)) (2 degrees of freedom): 0.493 and 0.975, 0.734."""
    rng = np.random.default_rng(4)
    n = 200_000
    process = np.where(np.arange(n) < n // 2, "a", "b")
    width = np.where(process == "a", 1.3, np.sqrt(2.0 - 1.3**2))
    cov = np.broadcast_to(np.eye(2) * 100.0, (n, 2, 2))
    e = rng.normal(size=(n, 2)) * 10.0 * width[:, None]
    t = np.zeros((n, 2))
    pooled = covariance_figures(e, t, cov, np.ones(n, bool) | (process == "a"))
    assert pooled["pull_width_1"] == pytest.approx(1.0, abs=0.01)

    def coverage(w: float) -> float:
        return 1.0 - np.exp(-2.2958 / (2.0 * w**2))

    assert pooled["coverage_1sigma"] == pytest.approx(
        (coverage(1.3) + coverage(np.sqrt(2.0 - 1.3**2))) / 2, abs=0.005
    )
    table = pulls_in_bins(e, t, cov, process, by="process")
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "pull_width_1"] == pytest.approx(1.3, rel=0.01)
    assert table.loc["b", "pull_width_2"] == pytest.approx(np.sqrt(2.0 - 1.3**2), rel=0.01)
    assert table.loc["a", "coverage_1sigma"] == pytest.approx(coverage(1.3), abs=0.005)
    # each process is Gaussian, the mixture is not
    assert table["pull_kurtosis"].to_numpy() == pytest.approx([3.0, 3.0], abs=0.1)
    assert pull_kurtosis(e / 10.0) > 3.5


def test_a_shrunken_estimate_shows_in_bins_of_the_true_met():
    """Half the events without MET, half with |t| = 100 GeV; the estimate is 0.7 t plus Gaussian
    noise of the claimed sigma = 10 GeV per component. Without MET the covariance is right; with
    it the error along t is -30 GeV and |z|^2 is non-central chi-squared (2 dof, lambda =
    (30/10)^2 = 9), so the 1-sigma coverage is P(chi2 < 2.2958) of that distribution (scipy)."""
    from scipy.stats import ncx2

    rng = np.random.default_rng(6)
    n = 100_000
    phi = rng.uniform(-np.pi, np.pi, n)
    t = 100.0 * np.stack([np.cos(phi), np.sin(phi)], 1) * (np.arange(n) % 2)[:, None]
    e = 0.7 * t + rng.normal(size=(n, 2)) * 10.0
    cov = np.broadcast_to(np.eye(2) * 100.0, (n, 2, 2))
    table = pulls_in_bins(e, t, cov, np.array(["a"] * n), by="truth")
    assert list(table.index) == ["|t| [0, 10) GeV", "|t| [60, 120) GeV"]  # empty bins left out
    assert np.isnan(table.loc["|t| [0, 10) GeV", "error_parallel"])  # no direction without t
    assert table.loc["|t| [0, 10) GeV", "coverage_1sigma"] == pytest.approx(0.6827, abs=0.01)
    shrunk = table.loc["|t| [60, 120) GeV"]
    assert shrunk["error_parallel"] == pytest.approx(-30.0, abs=0.3)
    assert shrunk["coverage_1sigma"] == pytest.approx(ncx2.cdf(2.2958, 2, 9.0), abs=0.01)
    assert shrunk["sigma"] == pytest.approx(10.0)


def test_laplace_errors_have_kurtosis_six():
    rng = np.random.default_rng(5)
    z = rng.laplace(0.0, 1.0 / np.sqrt(2.0), (400_000, 2))  # variance 1, kurtosis 6
    assert pull_kurtosis(z) == pytest.approx(6.0, abs=0.2)


def test_an_unknown_binning_is_refused():
    e = np.zeros((4, 2))
    cov = np.broadcast_to(np.eye(2), (4, 2, 2))
    with pytest.raises(MetbenchError, match="sigma, process, truth"):
        pulls_in_bins(e, e, cov, np.array(["a"] * 4), by="n_pu")


def _student_t(rng: np.random.Generator, root: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """Errors drawn from bivariate Student t's with covariance ``root root^T`` and ``dof``:
    a Gaussian of scale ``root sqrt((nu - 2) / nu)`` divided by sqrt(chi^2_nu / nu)."""
    n = len(dof)
    g = (root @ rng.normal(size=(n, 2, 1)))[..., 0] * np.sqrt((dof - 2.0) / dof)[:, None]
    return g / np.sqrt(rng.chisquare(dof) / dof)[:, None]


def test_the_gaussian_equivalent_of_a_student_t_has_scipys_tail_probability():
    from scipy import stats

    rng = np.random.default_rng(4)
    chi2, nu = rng.uniform(0.0, 40.0, 200), rng.uniform(2.5, 50.0, 200)
    q = gaussian_equivalent_chi2(chi2, nu)
    # r^T scale^-1 r / 2 follows F(2, nu), scale = cov (nu - 2) / nu; then the Gaussian chi^2_2
    p = stats.f.cdf(chi2 * nu / (nu - 2.0) / 2.0, 2, nu)
    np.testing.assert_allclose(stats.chi2.cdf(q, 2), p, rtol=1e-9, atol=1e-12)
    # nu -> infinity (and None) is the Gaussian
    np.testing.assert_allclose(gaussian_equivalent_chi2(chi2, 1e9), chi2, rtol=1e-6)
    np.testing.assert_array_equal(gaussian_equivalent_chi2(chi2, np.inf), chi2)
    np.testing.assert_array_equal(gaussian_equivalent_chi2(chi2, None), chi2)


def test_a_right_student_t_error_model_is_calibrated_and_a_gaussian_one_is_not():
    rng = np.random.default_rng(5)
    n = 100_000
    cov, root = _ellipses(rng, n)
    nu = rng.choice([3.0, 5.0, 10.0], n)
    t = rng.normal(0.0, 50.0, (n, 2))
    e = t + _student_t(rng, root, nu)
    right = covariance_figures(e, t, cov, np.ones(n, bool), dof=nu)
    assert right["pull_width_1"] == pytest.approx(1.0, abs=0.02)
    assert right["pull_width_2"] == pytest.approx(1.0, abs=0.02)
    assert right["coverage_1sigma"] == pytest.approx(0.6827, abs=0.006)
    assert right["coverage_2sigma"] == pytest.approx(0.9545, abs=0.003)
    z, _ = whitened_residuals(e, t, cov, nu)
    assert pull_kurtosis(z) == pytest.approx(3.0, abs=0.1)
    # the same errors read as Gaussian with the right covariance: the core over-covered, the
    # tails under-covered, the kurtosis high (what METNetSig's Gaussian pulls showed)
    gauss = covariance_figures(e, t, cov, np.ones(n, bool))
    assert gauss["coverage_1sigma"] > 0.72
    assert gauss["coverage_2sigma"] < 0.945
    assert pull_kurtosis(whitened_residuals(e, t, cov)[0]) > 5.0
