"""The detector simulation against the Delphes CMS card's formulas, restated here from the card."""

from __future__ import annotations

import numpy as np
import pytest

from metbench.data.generate.detector import (
    ECAL_TOWERS,
    HCAL_TOWERS,
    DetectorConfig,
    DetectorInput,
    d0_resolution,
    dz_resolution,
    ecal_resolution,
    hcal_resolution,
    lognormal_smear,
    simulate_detector,
    track_pt_resolution,
    tracking_efficiency,
)


# --- the formulas at chosen points, computed by hand from delphes_card_CMS.tcl ------------------
@pytest.mark.parametrize(
    ("pt", "eta", "pdg", "expected"),
    [
        (0.05, 0.0, 211, 0.0),
        (0.5, 0.3, 211, 0.70),
        (5.0, -1.2, 211, 0.95),
        (0.5, 2.0, 211, 0.60),
        (50.0, -2.2, 211, 0.85),
        (50.0, 2.6, 211, 0.0),
        (0.5, 0.0, 11, 0.73),
        (50.0, 0.0, 11, 0.95),
        (500.0, 0.0, 11, 0.99),
        (50.0, 2.0, 11, 0.83),
        (500.0, -2.0, 11, 0.90),
        (0.5, 1.0, 13, 0.75),
        (50.0, 1.0, 13, 0.99),
        (50.0, 2.0, 13, 0.98),
        (2000.0, 0.0, 13, 0.99 * np.exp(0.5 - 1.0)),
    ],
)
def test_tracking_efficiency_matches_card(pt, eta, pdg, expected):
    assert tracking_efficiency(np.array([pt]), np.array([eta]), np.array([pdg]))[
        0
    ] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pt", "eta", "pdg", "expected"),
    [
        (10.0, 0.2, 211, np.hypot(0.06, 10 * 1.3e-3)),
        (10.0, 1.0, 211, np.hypot(0.10, 10 * 1.7e-3)),
        (100.0, 2.0, 211, np.hypot(0.25, 100 * 3.1e-3)),
        (40.0, 0.2, 11, np.hypot(0.03, 40 * 1.3e-3)),
        (40.0, 2.0, 11, np.hypot(0.15, 40 * 3.1e-3)),
        (45.0, 0.2, 13, np.hypot(0.01, 45 * 1.0e-4)),
        (45.0, 1.0, 13, np.hypot(0.015, 45 * 1.5e-4)),
        (45.0, -2.3, 13, np.hypot(0.025, 45 * 3.5e-4)),
        (1.0e4, 2.0, 211, 1.0),  # Delphes caps the relative resolution at 1
    ],
)
def test_track_resolution_matches_card(pt, eta, pdg, expected):
    got = track_pt_resolution(np.array([pt]), np.array([eta]), np.array([pdg]))[0]
    assert got == pytest.approx(expected, rel=1e-12)


def test_calorimeter_resolutions_match_card():
    e = np.array([10.0, 50.0, 200.0])
    base = np.sqrt(e**2 * 0.008**2 + e * 0.11**2 + 0.40**2)
    np.testing.assert_allclose(ecal_resolution(e, np.full(3, 0.0)), base)
    np.testing.assert_allclose(ecal_resolution(e, np.full(3, 1.0)), 1.64 * base)
    np.testing.assert_allclose(ecal_resolution(e, np.full(3, -2.5)), (2.16 + 5.6 * 0.25) * base)
    np.testing.assert_allclose(
        ecal_resolution(e, np.full(3, 4.0)), np.sqrt(e**2 * 0.107**2 + e * 2.08**2)
    )
    np.testing.assert_allclose(
        hcal_resolution(e, np.full(3, 2.9)), np.sqrt(e**2 * 0.05**2 + e * 1.5**2)
    )
    np.testing.assert_allclose(
        hcal_resolution(e, np.full(3, -3.5)), np.sqrt(e**2 * 0.13**2 + e * 2.7**2)
    )


def test_impact_parameter_resolution_matches_cms_table_end_points():
    # trackResolutionCMS.tcl: |eta|<0.9, pt 0.18-0.22 GeV: d0 0.3543 mm, dz 0.3693 mm;
    # pt > 134.7 GeV: d0 0.0110 mm, dz 0.0318 mm (the parametrisation passes near both)
    assert d0_resolution(np.array([0.2]), np.array([0.5]))[0] == pytest.approx(0.03543, rel=0.01)
    assert dz_resolution(np.array([0.2]), np.array([0.5]))[0] == pytest.approx(0.03693, rel=0.01)
    assert d0_resolution(np.array([1000.0]), np.array([0.5]))[0] == pytest.approx(0.00110, rel=0.01)
    assert dz_resolution(np.array([1000.0]), np.array([2.0]))[0] == pytest.approx(0.00850, rel=0.01)


def test_lognormal_smear_has_requested_mean_and_width():
    rng = np.random.default_rng(3)
    value = np.full(400_000, 20.0)
    out = lognormal_smear(rng, value, np.full_like(value, 5.0))
    assert out.mean() == pytest.approx(20.0, rel=0.003)
    assert out.std() == pytest.approx(5.0, rel=0.01)
    assert np.all(out > 0)


def test_tower_granularity_follows_card():
    ring, _iphi, inside = ECAL_TOWERS.index(np.array([0.3, 2.0, 4.0, 5.5]), np.zeros(4))
    assert list(inside) == [True, True, True, False]
    assert ECAL_TOWERS.n_phi[ring[0]] == 360
    assert ECAL_TOWERS.eta_edges[ring[0] + 1] - ECAL_TOWERS.eta_edges[ring[0]] == pytest.approx(
        0.0174
    )
    assert ECAL_TOWERS.n_phi[ring[2]] == 36
    ring, _, _ = HCAL_TOWERS.index(np.array([0.5, 2.0, 4.8]), np.zeros(3))
    assert list(HCAL_TOWERS.n_phi[ring]) == [72, 36, 18]
    assert HCAL_TOWERS.eta_edges[ring[0] + 1] - HCAL_TOWERS.eta_edges[ring[0]] == pytest.approx(
        0.087
    )
    assert ECAL_TOWERS.eta_edges[0] == -5 and ECAL_TOWERS.eta_edges[-1] == 5


# --- single-particle guns through the full simulation --------------------------------------------
def _gun(pdg: int, charge: int, pt: float, eta: np.ndarray, phi: np.ndarray, mass: float = 0.0):
    n = len(eta)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    z = np.zeros(n)
    return DetectorInput(
        n_events=n,
        event=np.arange(n),
        interaction=np.arange(n),
        px=px, py=py, pz=pz, e=e,
        pdg_id=np.full(n, pdg, dtype=np.int32),
        charge=np.full(n, charge, dtype=np.int8),
        vx=z, vy=z, vz=z,
        is_pileup=np.zeros(n, dtype=bool),
        interaction_event=np.arange(n),
        interaction_z=z,
    )  # fmt: skip


def test_photon_energy_resolution_in_the_barrel():
    rng = np.random.default_rng(11)
    n = 20_000
    eta = rng.uniform(-0.2, 0.2, n)
    gen = _gun(22, 0, 50.0, eta, rng.uniform(-3, 3, n))
    reco = simulate_detector(gen, rng)
    c = reco.columns
    assert np.all(c["pdg_id"] == 22)
    energy = c["pt"] * np.cosh(c["eta"])
    true_e = 50.0 * np.cosh(eta[reco.event])
    ratio = energy / true_e
    expected = ecal_resolution(np.array([50.0 * np.cosh(0.1)]), np.array([0.1]))[0] / (
        50 * np.cosh(0.1)
    )
    assert ratio.mean() == pytest.approx(1.0, abs=0.002)
    assert ratio.std() == pytest.approx(expected, rel=0.06)


def test_pion_tracking_efficiency_and_momentum_resolution():
    rng = np.random.default_rng(12)
    n = 20_000
    eta = rng.uniform(-0.5, 0.5, n)
    gen = _gun(211, 1, 10.0, eta, rng.uniform(-3, 3, n), mass=0.13957)
    reco = simulate_detector(gen, rng)
    c = reco.columns
    charged = c["charge"] != 0
    assert charged.sum() / n == pytest.approx(0.95, abs=0.006)  # binomial sigma 0.0015
    assert np.all(c["pdg_id"][charged] == 211)
    ratio = c["pt"][charged] / 10.0
    assert ratio.std() == pytest.approx(np.hypot(0.06, 10 * 1.3e-3), rel=0.04)
    # prompt tracks: d0 residual width equals the parametrised resolution
    assert np.std(c["d0"][charged]) == pytest.approx(
        d0_resolution(np.array([10.0]), np.array([0.25]))[0], rel=0.05
    )
    # untracked pions leave their energy in HCAL towers as neutral hadrons (or below threshold)
    assert set(np.unique(c["pdg_id"][~charged])) <= {130}


def test_soft_charged_particles_curl_before_the_barrel_calorimeter():
    # a charged particle at eta 0 reaches the barrel (r = 1.29 m) only if 2R = 2 pt / (0.3 B) >= 1.29 m,
    # i.e. pt >= 0.735 GeV; a neutral of the same momentum flies straight
    from metbench.data.generate.calorimetry import (
        propagate_to_calorimeter as _propagate_to_calorimeter,
    )

    cfg = DetectorConfig()
    pt = np.array([0.5, 0.5, 1.0])
    _eta_c, phi_c, reaches = _propagate_to_calorimeter(
        pt, np.zeros(3), np.zeros(3), np.array([1, 0, 1]), cfg
    )
    assert list(reaches) == [False, True, True]
    # the 1 GeV positive track is bent: phi shift -asin(0.3*3.8*1.29/2/1.0)
    assert phi_c[2] == pytest.approx(-np.arcsin(0.29979 * 3.8 * 1.29 / 2.0), rel=1e-6)
    assert phi_c[1] == 0.0
