"""PUPPI against a direct, loop-based transcription of CMSSW's algorithm steps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from metbench.baselines.kinematics import rapidity
from metbench.baselines.puppi import (
    PuppiParameters,
    _alpha,
    _median_rms,
    puppi_classes,
    puppi_weights,
)


@pytest.mark.parametrize(
    ("pt", "eta", "charge", "pdg", "dz", "from_pv", "expected"),
    [
        (1.0, 0.0, 0, 22, 0.0, 3, 0),  # neutral
        (1.0, 0.0, 1, 211, 0.0, 0, 2),  # used in another vertex's fit: pileup
        (1.0, 0.0, 1, 211, 0.0, 3, 1),  # used in the PV fit
        (25.0, 0.0, 1, 211, 5.0, 1, 1),  # fromPV 1 above PtMaxCharged = 20 GeV
        (1.0, 2.45, 1, 211, 0.1, 1, 1),  # |eta| >= 2.4 and |dz| < 0.3 cm
        (1.0, -2.45, 1, 211, 0.5, 2, 2),  # |eta| >= 2.4 and |dz| >= 0.3 cm
        (1.0, 1.0, 1, 211, 0.1, 2, 0),  # fromPV 2 in the tracker core: weighted like a neutral
        (1.0, 1.0, 1, 211, 0.1, 1, 0),
    ],
)
def test_candidate_classes_follow_puppi_producer(pt, eta, charge, pdg, dz, from_pv, expected):
    got = puppi_classes(*(np.array([v]) for v in (pt, eta, charge, pdg, dz, from_pv)))
    assert got[0] == expected


def test_no_lep_sets_leptons_aside():
    cls = puppi_classes(
        np.array([30.0, 30.0]), np.zeros(2), np.array([1, -1]), np.array([-13, 211]),
        np.zeros(2), np.array([0, 0]), PuppiParameters.no_lepton(),
    )  # fmt: skip
    assert list(cls) == [3, 2]


def _brute_alpha(y, eta, phi, pt, neighbour, cone):
    out = np.zeros(len(pt))
    for i in range(len(pt)):
        dphi = np.mod(phi - phi[i] + np.pi, 2 * np.pi) - np.pi
        dy = y - y[i]
        in_cone = neighbour & (np.abs(dy) < cone) & (dy**2 + dphi**2 < cone**2)
        dr2 = (eta - eta[i]) ** 2 + dphi**2
        use = in_cone & (dr2 >= 1e-4)
        var = np.sum(pt[use] ** 2 / dr2[use])
        out[i] = np.log(var) if var > 0 else 0.0
    return out


def test_alpha_equals_pairwise_loop_across_events():
    rng = np.random.default_rng(5)
    n = 1500
    event = np.sort(rng.integers(0, 3, n))
    pt = rng.exponential(1.0, n) + 0.1
    eta = rng.uniform(-4.5, 4.5, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    mass = np.where(rng.random(n) < 0.5, 0.13957, 0.0)
    y = rapidity(pt, eta, mass)
    neighbour = rng.random(n) < 0.4
    target = rng.random(n) < 0.7
    fast = _alpha(event, y, eta, phi, pt, neighbour, target, 0.4)
    for ev in range(3):
        sel = event == ev
        slow = _brute_alpha(y[sel], eta[sel], phi[sel], pt[sel], neighbour[sel], 0.4)
        np.testing.assert_allclose(fast[sel & target], slow[target[sel]], rtol=1e-10, atol=1e-12)
        assert np.all(fast[sel & ~target] == 0)


def test_median_and_rms_follow_cmssw_quirks():
    # one event; pileup alphas sorted: [-1, 0, 0, 2, 3, 4, 6]; the median index starts after the
    # last zero (index 2): 2 + int((7 - 2) / 2) = 4 -> 3.0; the RMS is left-sided over non-zero
    # values <= median: {-1, 2, 3} -> mean((x-3)^2) = (16 + 1 + 0) / 3
    alphas = np.array([4.0, 0.0, -1.0, 6.0, 2.0, 0.0, 3.0])
    event = np.zeros(len(alphas), dtype=np.int64)
    is_pu = np.ones(len(alphas), dtype=bool)
    med, rms, has = _median_rms(
        1, event, alphas, is_pu, np.zeros_like(is_pu), apply_low_pu_corr=False
    )
    assert med[0] == 3.0
    # without the low-PU correction the RMS uses all non-zero values
    assert rms[0] == pytest.approx(np.sqrt(np.mean((np.array([-1, 2, 3, 4, 6]) - 3.0) ** 2)))
    med, rms, has = _median_rms(
        1, event, alphas, is_pu, np.zeros_like(is_pu), apply_low_pu_corr=True
    )
    assert med[0] == 3.0 and rms[0] == pytest.approx(np.sqrt(17 / 3))
    # low-PU shift: leading-vertex alphas {1, 5}: one below the median, f = 1 / (1 + 0.5 * 7)
    pv_alpha = np.array([1.0, 5.0])
    all_alpha = np.concatenate([alphas, pv_alpha])
    ev = np.zeros(len(all_alpha), dtype=np.int64)
    pu = np.r_[is_pu, False, False]
    pv = np.r_[np.zeros(7, bool), True, True]
    med2, rms2, _ = _median_rms(1, ev, all_alpha, pu, pv, apply_low_pu_corr=True)
    shift = np.sqrt(chi2.ppf(1 / 4.5, df=1) * np.sqrt(17 / 3))
    assert med2[0] == pytest.approx(3.0 - shift)
    assert rms2[0] == pytest.approx(np.sqrt(17 / 3) - shift)
    assert has[0]


def test_weights_on_a_constructed_event():
    # a leading-vertex jet around (0, 0), pileup tracks spread elsewhere, and three neutrals:
    # one inside the LV jet (high weight), one isolated (alpha = 0 -> weight 0), one soft
    rng = np.random.default_rng(2)
    n_pu = 200
    pu_eta = rng.uniform(-2.0, 2.0, n_pu)
    pu_phi = rng.uniform(1.0, 5.0, n_pu) - np.pi  # away from phi = 0 ... mostly
    pt = np.r_[np.full(5, 10.0), rng.exponential(0.7, n_pu) + 0.2, 20.0, 20.0, 0.3]
    eta = np.r_[rng.normal(0, 0.05, 5), pu_eta, 0.05, -1.5, 0.5]
    phi = np.r_[rng.normal(0, 0.05, 5), pu_phi, 0.05, 2.9, 1.0]
    charge = np.r_[np.ones(5), np.ones(n_pu), 0, 0, 0].astype(np.int8)
    pdg = np.r_[np.full(5 + n_pu, 211), 22, 130, 22].astype(np.int32)
    from_pv = np.r_[np.full(5, 3), np.zeros(n_pu), 3, 3, 3].astype(np.int8)
    mass = np.where(charge != 0, 0.13957, 0.0)
    w = puppi_weights(np.zeros(len(pt), dtype=np.int64), 1, pt, eta, phi, mass, charge, pdg,
                      np.zeros(len(pt)), from_pv, np.array([20]))  # fmt: skip
    assert np.all(w[:5] == 1.0)  # CHS: leading-vertex tracks
    assert np.all(w[5 : 5 + n_pu] == 0.0)  # CHS: pileup tracks
    assert w[-3] > 0.5  # neutral inside the leading-vertex jet
    assert w[-2] == 0.0  # no leading-vertex neighbour: alpha = 0 -> chi2 = 0
    assert w[-1] == 0.0  # below MinNeutralPt + slope * nPV = 0.2 + 0.015 * 20


def test_stored_weights_are_reproduced_from_stored_columns(mini_dataset):
    """The PUPPI weights in the dataset are a function of the columns an estimator sees."""
    import awkward as ak

    from metbench.data.source import read_events

    arr = read_events(mini_dataset, "val")
    pf = arr.pf
    counts = ak.to_numpy(ak.num(pf))
    event = np.repeat(np.arange(len(arr)), counts)
    col = {f: ak.to_numpy(ak.flatten(pf[f])) for f in pf.fields}
    w = puppi_weights(event, len(arr), col["pt"], col["eta"], col["phi"], col["mass"], col["charge"],
                      col["pdg_id"], col["dz"], col["from_pv"], ak.to_numpy(arr.n_pv))  # fmt: skip
    from metbench.data.store import round_mantissa

    np.testing.assert_array_equal(round_mantissa(w, 10), col["puppi_weight"])
    # and PUPPI does its job: pileup charged candidates are removed, neutral pileup mostly
    pu = col["truth_is_pileup"]
    neutral = col["charge"] == 0
    assert col["puppi_weight"][pu & ~neutral].mean() < 0.05
    assert col["puppi_weight"][~pu & ~neutral].mean() > 0.7
    assert col["puppi_weight"][pu & neutral].mean() < col["puppi_weight"][~pu & neutral].mean()
