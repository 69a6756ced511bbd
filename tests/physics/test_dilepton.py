"""The analytic tt -> 2l2nu neutrino solutions: every solution checked by direct four-vector
arithmetic, the generator's own neutrinos found among them (Pythia's, and the analytic sample's),
and the solvable fraction falling off below the true masses."""

from __future__ import annotations

import numpy as np
import pytest

from metbench.physics.dilepton import (
    dilepton_solutions,
    neutrino_ellipse,
    solvable,
    solvable_fraction,
)
from metbench.scoring.kinematics import invariant_mass, load_chains, massless


@pytest.fixture(scope="module")
def toy():
    from metbench.nn.deelema_closure import toy_ttbar

    sample = toy_ttbar(400, seed=11)
    sample["met"] = sample["nu"][:, 0, :2] + sample["nu"][:, 1, :2]
    return sample


def _chain_masses(b, lep, nu3):
    """m(l nu) and m(b l nu) [GeV] of massless neutrinos ``nu3`` (..., 3) with their chain."""
    b, lep, nu = np.broadcast_arrays(b, lep, massless(nu3))
    return invariant_mass(lep, nu), invariant_mass(lep, nu, b)


def test_points_on_an_ellipse_satisfy_both_mass_constraints(toy):
    rng = np.random.default_rng(1)
    b, lep = toy["b"][:, 0], toy["lep"][:, 0]
    # a muon's mass on the lepton: the constraints hold for a massive lepton too
    lep = lep.copy()
    lep[:, 3] = np.sqrt(np.sum(lep[:, :3] ** 2, -1) + 0.10566**2)
    m_w, m_top = rng.uniform(75, 95, len(b)), rng.uniform(165, 200, len(b))
    ellipse = neutrino_ellipse(b, lep, m_w, m_top)
    assert ellipse.exists.mean() > 0.95
    nu = ellipse.at(rng.uniform(0, 2 * np.pi, (len(b), 5)))[ellipse.exists]
    mw, mt = _chain_masses(b[ellipse.exists, None], lep[ellipse.exists, None], nu)
    np.testing.assert_allclose(mw, np.broadcast_to(m_w[ellipse.exists, None], mw.shape), rtol=1e-9)
    np.testing.assert_allclose(
        mt, np.broadcast_to(m_top[ellipse.exists, None], mt.shape), rtol=1e-9
    )


def test_no_ellipse_when_the_top_is_lighter_than_its_b_and_lepton(toy):
    b, lep = toy["b"][:, 0], toy["lep"][:, 0]
    m_bl = invariant_mass(b, lep)
    ellipse = neutrino_ellipse(b, lep, 80.4, 0.9 * m_bl)
    assert not ellipse.exists.any()
    assert np.isnan(ellipse.centre).all()


def test_the_true_neutrinos_are_among_the_solutions_at_the_true_masses(toy):
    nu, found = dilepton_solutions(toy["b"], toy["lep"], toy["met"])
    assert found.any(1).all()
    assert set(np.unique(found.sum(1))) <= {2, 4}  # zeros of a periodic function come in pairs
    distance = np.linalg.norm(nu - toy["nu"][:, None, :, :3], axis=-1).max(-1)  # (n, 4)
    assert np.all(np.nanmin(np.where(found, distance, np.inf), 1) < 1e-3)  # GeV
    # every solution: both chains at the masses, the neutrinos' sum the MET
    mw, mt = _chain_masses(toy["b"][:, None], toy["lep"][:, None], nu)
    np.testing.assert_allclose(mw[found], 80.4, rtol=1e-8)
    np.testing.assert_allclose(mt[found], 172.5, rtol=1e-8)
    np.testing.assert_allclose((nu[:, :, 0, :2] + nu[:, :, 1, :2])[found], np.repeat(
        toy["met"][:, None], 4, 1)[found], atol=1e-6)  # fmt: skip


def test_solvability_is_a_kinematic_endpoint_of_the_masses(toy):
    b, lep, met = toy["b"], toy["lep"], toy["met"]
    assert solvable(b, lep, met).all()
    fraction = solvable_fraction(b, lep, met, np.array([72.0, 80.4]), np.array([161.0, 172.5]))
    assert fraction[1, 1] == 1.0
    assert fraction[0, 0] < 0.6  # 9 % / 7 % low: about half the events have no solution
    assert fraction[1, 0] < 0.6 and fraction[0, 1] < 0.95
    # a wrong MET (the neutrinos' sum turned by 90 degrees) leaves many events without one
    turned = np.stack([-met[:, 1], met[:, 0]], -1)
    assert solvable(b, lep, turned).mean() < 0.9


def test_pythia_events_are_solved_at_their_own_masses(tiny_dataset):
    """Pythia's tt -> 2l2nu truth chains (widths, radiation): at each chain's own m(l nu) and
    m(b l nu), every event has a solution and one of them is Pythia's neutrino pair (to the
    float32 precision the dataset stores, amplified where the solutions are close together)."""
    chains = [load_chains(tiny_dataset, split) for split in ("train", "val", "test")]
    b, lep, nu = (
        np.concatenate([c[k] for c in chains if c is not None])
        for k in ("truth_b_quarks", "truth_leptons", "truth_neutrinos")
    )
    complete = (
        np.isfinite(b).all((1, 2)) & np.isfinite(lep).all((1, 2)) & np.isfinite(nu).all((1, 2))
    )
    b, lep, nu = b[complete], lep[complete], nu[complete]
    assert len(b) >= 5
    m_w, m_top = invariant_mass(lep, nu), invariant_mass(lep, nu, b)  # (n, 2) per chain
    met = nu[:, 0, :2] + nu[:, 1, :2]
    solutions, found = dilepton_solutions(b, lep, met, m_w, m_top)
    distance = np.linalg.norm(solutions - nu[:, None, :, :3], axis=-1).max(-1)
    relative = np.nanmin(np.where(found, distance, np.inf), 1) / np.abs(nu[..., 3]).max(-1)
    assert np.all(relative < 1e-4)


def test_incomplete_events_have_no_solution_and_leave_the_others_alone(toy):
    b, lep, met = toy["b"][:20].copy(), toy["lep"][:20].copy(), toy["met"][:20]
    b[3] = np.nan  # a missing b quark
    lep[5, 1] = 0.0  # a lepton of zero momentum
    with np.errstate(all="raise"):  # no floating-point warning escapes
        ok = solvable(b, lep, met)
        _, found = dilepton_solutions(b, lep, met)
    assert not ok[3] and not ok[5] and not found[[3, 5]].any()
    assert ok[np.r_[0:3, 4, 6:20]].all()
