"""The kinematic-reconstruction task: truth chains, scoring, the W-mass baseline and DeeLeMa."""

from __future__ import annotations

import json

import numpy as np
import pytest

from metbench.data.source import EventSource
from metbench.physics.neutrinos import neutrino_pz
from metbench.scoring.kinematics import (
    TOP_MASS,
    W_MASS,
    invariant_mass,
    massless,
    score_kinematics,
)
from tests.commands import cli, fast
from tests.shipped import shipped

PuppiMet, WMassNeutrinos = shipped("puppi"), shipped("nu-wmass")


@pytest.fixture(scope="module")
def ttbar(mini_dataset):
    return next(iter(EventSource(mini_dataset, "test", batch_size=150, processes=["ttbar_2l2nu"])))


def test_chains_pair_each_lepton_with_its_neutrino_and_b(ttbar):
    """The generator's W and top masses come back only with the right pairing."""
    lep, nu, b = (ttbar.truth[k] for k in ("truth_leptons", "truth_neutrinos", "truth_b_quarks"))
    complete = (
        np.isfinite(lep).all((1, 2)) & np.isfinite(nu).all((1, 2)) & np.isfinite(b).all((1, 2))
    )
    assert complete.mean() > 0.95
    lep, nu, b = lep[complete], nu[complete], b[complete]
    for chain in (0, 1):
        assert np.median(invariant_mass(lep[:, chain], nu[:, chain])) == pytest.approx(
            W_MASS, abs=1.0
        )
        m_top = invariant_mass(lep[:, chain], nu[:, chain], b[:, chain])
        assert np.median(m_top) == pytest.approx(TOP_MASS, abs=2.0)
    crossed = invariant_mass(lep[:, 0], nu[:, 1])
    assert abs(np.median(crossed) - W_MASS) > 10


def test_other_processes_have_no_chain(mini_dataset):
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=20, processes=["z_mumu"])))
    assert np.isnan(batch.truth["truth_neutrinos"]).all()


def test_score_of_perfect_and_partial_reconstruction(ttbar):
    chains = {k: ttbar.truth[k] for k in ("truth_b_quarks", "truth_leptons", "truth_neutrinos")}
    perfect = chains["truth_neutrinos"][..., :3].copy()
    s = score_kinematics(perfect, chains, n_boot=200, seed=1)
    f = s["figures"]
    assert s["efficiency"] == 1.0 or s["n_events"] == s["n_eligible"]
    for k in ("nu_px", "nu_py", "nu_pz"):
        assert f[f"{k}_sigma"]["value"] == pytest.approx(0.0, abs=1e-3)
        assert f[f"{k}_bias"]["value"] == pytest.approx(0.0, abs=1e-3)
    assert f["m_w_median"]["value"] == pytest.approx(W_MASS, abs=1.0)
    assert f["m_w_median"]["low"] <= f["m_w_median"]["value"] <= f["m_w_median"]["high"]
    # half the events not reconstructed, the others off by +10 GeV in px
    shifted = perfect.copy()
    shifted[::2] = np.nan
    shifted[1::2, :, 0] += 10.0
    s2 = score_kinematics(shifted, chains, n_boot=0)
    assert s2["efficiency"] == pytest.approx(s2["n_events"] / s2["n_eligible"])
    assert 0.4 < s2["efficiency"] < 0.6
    assert s2["figures"]["nu_px_bias"]["value"] == pytest.approx(10.0, abs=1e-3)


def test_w_mass_solution_satisfies_the_constraint(ttbar):
    lep, nu = ttbar.truth["truth_leptons"], ttbar.truth["truth_neutrinos"]
    ok = np.isfinite(lep).all((1, 2)) & np.isfinite(nu).all((1, 2))
    lep, nu = lep[ok][:, 0], nu[ok][:, 0]
    pz = neutrino_pz(lep, nu[:, 0], nu[:, 1])
    rebuilt = massless(np.stack([nu[:, 0], nu[:, 1], pz], 1))
    lt2 = lep[:, 0] ** 2 + lep[:, 1] ** 2
    mt2 = 2 * (
        np.sqrt(lt2) * np.hypot(nu[:, 0], nu[:, 1]) - lep[:, 0] * nu[:, 0] - lep[:, 1] * nu[:, 1]
    )
    real = mt2 < W_MASS**2  # a real solution exists
    assert real.mean() > 0.5
    m = invariant_mass(lep[real], rebuilt[real])
    np.testing.assert_allclose(m, W_MASS, rtol=2e-3)  # leptons stored at float32, massless approx.
    # with the true pT the true pz is one of the two roots: the chosen one or the other
    true_pz = nu[real, 2]
    close = np.isclose(pz[real], true_pz, rtol=0.05, atol=2.0)
    assert close.mean() > 0.3


def test_w_mass_baseline_shares_the_puppi_met(ttbar):
    visible = ttbar.for_estimator()
    visible = type(visible)(
        **{**visible.__dict__, "truth": {"truth_leptons": ttbar.truth["truth_leptons"]}}
    )
    nus = WMassNeutrinos().predict_neutrinos(visible)
    puppi = PuppiMet().predict(visible)
    ok = np.isfinite(nus).all((1, 2))
    np.testing.assert_allclose(nus[ok, :, :2].sum(1), puppi[ok], rtol=1e-6, atol=1e-6)


def test_deelema_imposes_the_met_exactly(ttbar):
    torch = pytest.importorskip("torch")
    from metbench.nn.deelema import SCALE, build_deelema, deelema_inputs

    met = PuppiMet().predict(ttbar)
    x, usable = deelema_inputs(ttbar, met)
    net = build_deelema(hidden=16, layers=1)
    assert net.masses() == pytest.approx((70.0, 150.0), rel=1e-5)
    with torch.no_grad():
        q = net(torch.as_tensor(x)).numpy() * SCALE
        loss = float(net.loss(torch.as_tensor(x[usable])))
    np.testing.assert_allclose(q[usable, :, :2].sum(1), met[usable], rtol=1e-4, atol=1e-3)
    assert np.isfinite(loss) and loss > 0


def test_deelema_onnx_export_matches_torch(ttbar):
    pytest.importorskip("onnxruntime")
    from pathlib import Path

    from metbench.nn.deelema import SCALE

    DeeLeMaEstimator = shipped("deelema-torch")

    from metbench.estimators.submission import load_submission

    folder = Path(__file__).resolve().parents[2] / "submissions" / "deelema-torch"
    params = load_submission(folder).manifest.parameters  # the frame the weights were trained in
    a = DeeLeMaEstimator(weights_dir=str(folder), **params).predict_neutrinos(ttbar)
    b = DeeLeMaEstimator(weights_dir=str(folder), runtime="onnx", **params).predict_neutrinos(ttbar)
    assert np.isfinite(a).any()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    real = np.isfinite(a)
    np.testing.assert_allclose(b[real] / SCALE, a[real] / SCALE, rtol=0, atol=1e-5)


def test_run_scores_the_kinematics_task(tiny_dataset, tmp_path):
    r = cli("run", "submissions/nu-wmass", "--dataset", tiny_dataset, *fast(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "neutrino reconstruction" in r.stdout
    doc = json.loads(next(tmp_path.rglob("nu-wmass.json")).read_text())
    k = doc["scores"]["tasks"]["kinematics"]
    assert k["n_events"] > 0 and k["figures"]["m_w_median"]["value"] == pytest.approx(W_MASS, abs=2)
    assert doc["entry"]["uses_truth"] == ["truth_leptons"]
