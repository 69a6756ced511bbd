"""PUPPI against a direct, loop-based transcription of CMSSW's algorithm steps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import chi2

from metbench.errors import MetbenchError
from metbench.physics.kinematics import rapidity
from metbench.physics.puppi import (
    PuppiParameters,
    _alpha,
    _median_rms,
    puppi_classes,
    puppi_weights,
)
from tests.conftest import ROOT, manifest_of


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


# --- tunes ---------------------------------------------------------------------------------------
def test_phase2_parameters_are_the_cmssw_phase2_values():
    # cms-sw/cmssw CommonTools/PileupAlgos/python/Puppi_cff.py (commit f58146d3):
    # phase2_common.toModify(puppi, EtaMinUseDeltaZ = -1., PtMaxCharged = -1.,
    # PtMaxNeutralsStartSlope = 0., DeltaZCut = 0.1, algos = [puppiCentral over |eta| 0-2.5 and
    # 2.5-3.5: MinNeutralPt 0.2, 0.2, MinNeutralPtSlope 0.015, 0.030, RMSEtaSF 1.0, 1.0,
    # MedEtaSF 1.0, 1.0; puppiForward over 3.5-10: 2.0, 0.08, 1.0, 0.75]; EtaMaxExtrap 2.0)
    p = PuppiParameters.phase2()
    assert p.eta_min_use_delta_z == -1.0
    assert p.pt_max_charged == -1.0
    assert p.pt_max_neutrals_start_slope == 0.0
    assert p.delta_z_cut == 0.1
    assert p.eta_max_extrap == 2.0
    got = [
        (r.eta_min, r.eta_max, r.min_neutral_pt, r.min_neutral_pt_slope, r.rms_eta_sf,
         r.med_eta_sf, r.use_charged)
        for r in p.regions
    ]  # fmt: skip
    assert got == [
        (0.0, 2.5, 0.2, 0.015, 1.0, 1.0, True),
        (2.5, 3.5, 0.2, 0.030, 1.0, 1.0, True),
        (3.5, 10.0, 2.0, 0.08, 1.0, 0.75, False),
    ]
    # untouched by the modifier: the producer's and puppiCentral/puppiForward's values
    run2 = PuppiParameters()
    for name in ("cone", "rms_pt_min_central", "rms_pt_min_forward", "pt_max_neutrals",
                 "pt_max_photons", "eta_max_photons", "min_puppi_weight", "apply_chs",
                 "apply_low_pu_corr", "no_lep"):  # fmt: skip
        assert getattr(p, name) == getattr(run2, name), name
    assert PuppiParameters.for_tune("phase2") == p
    assert PuppiParameters.for_tune("run2") == run2


def test_no_lepton_sets_of_both_tunes():
    # puppiNoLep = puppi.clone(puppiNoLep = True, PtMaxPhotons = 20.), cloned after the modifier
    for tune, base in (("run2", PuppiParameters()), ("phase2", PuppiParameters.phase2())):
        nolep = PuppiParameters.no_lepton(tune)
        assert nolep == replace(base, no_lep=True, pt_max_photons=20.0)
        assert PuppiParameters.for_tune(tune, no_lep=True) == nolep
    assert PuppiParameters.no_lepton() == PuppiParameters.no_lepton("run2")
    with pytest.raises(ValueError, match="unknown PUPPI tune"):
        PuppiParameters.for_tune("run3")


@pytest.mark.parametrize(
    ("pt", "eta", "dz", "from_pv", "expected"),
    [
        (1.0, 1.0, 0.05, 1, 1),  # |dz| < 0.1 cm at any |eta| (EtaMinUseDeltaZ = -1)
        (1.0, 0.0, 0.15, 2, 2),  # |dz| >= 0.1 cm: pileup
        (25.0, 0.5, 0.5, 1, 2),  # no pT rescue (PtMaxCharged = -1)
        (1.0, 0.0, 0.0, 3, 1),  # used in the PV fit
        (1.0, 0.0, 0.0, 0, 2),  # another vertex
    ],
)
def test_phase2_candidate_classes(pt, eta, dz, from_pv, expected):
    cols = (np.array([v]) for v in (pt, eta, 1, 211, dz, from_pv))
    assert puppi_classes(*cols, PuppiParameters.phase2())[0] == expected


def test_presets_carry_their_puppi_tune(mini_dataset):
    """pu200 stores Phase-2 PUPPI weights and says so in its manifest settings; mini and standard
    keep the Run-2 tune and their manifests as before (no puppi_tune key)."""
    from metbench.data.generate.presets import PRESETS, get_preset

    assert get_preset("pu200").puppi_tune == "phase2"
    assert get_preset("pu200").to_dict()["puppi_tune"] == "phase2"
    for name in ("mini", "standard"):
        assert PRESETS[name].puppi_tune == "run2"
        assert "puppi_tune" not in PRESETS[name].to_dict()
    assert manifest_of(mini_dataset)["settings"] == get_preset("mini").to_dict()
    with pytest.raises(MetbenchError, match="unknown PUPPI tune"):
        replace(get_preset("mini"), puppi_tune="phase3")


def test_generation_stores_the_weights_of_the_preset_tune(tiny_spec, tiny_dataset, tmp_path):
    """The same events generated with the Phase-2 tune: every column is the same as with the
    Run-2 tune except puppi_weight, which is the Phase-2 PUPPI of the stored columns."""
    import awkward as ak

    from metbench.data.generate.run import generate_dataset
    from metbench.data.source import read_events
    from metbench.data.store import round_mantissa

    spec = replace(tiny_spec, puppi_tune="phase2")
    out = tmp_path / "tiny-phase2"
    manifest = generate_dataset(spec, out, seed=3, workers=1)
    assert manifest["settings"]["puppi_tune"] == "phase2"
    assert "puppi_tune" not in manifest_of(tiny_dataset)["settings"]
    for split in ("train", "test"):
        run2, phase2 = read_events(tiny_dataset, split), read_events(out, split)
        for field in run2.pf.fields:
            a, b = (
                ak.to_numpy(ak.flatten(run2.pf[field])),
                ak.to_numpy(ak.flatten(phase2.pf[field])),
            )
            if field != "puppi_weight":
                np.testing.assert_array_equal(a, b, err_msg=field)
        pf = phase2.pf
        counts = ak.to_numpy(ak.num(pf))
        event = np.repeat(np.arange(len(phase2)), counts)
        col = {f: ak.to_numpy(ak.flatten(pf[f])) for f in pf.fields}
        args = (event, len(phase2), col["pt"], col["eta"], col["phi"], col["mass"], col["charge"],
                col["pdg_id"], col["dz"], col["from_pv"], ak.to_numpy(phase2.n_pv))  # fmt: skip
        w2 = puppi_weights(*args, PuppiParameters.phase2())
        np.testing.assert_array_equal(round_mantissa(w2, 10), col["puppi_weight"])
        w1 = ak.to_numpy(ak.flatten(run2.pf.puppi_weight))
        assert np.count_nonzero(w1 != col["puppi_weight"]) > 0.01 * len(w1)


# --- the ranked puppi entry ---------------------------------------------------------------------
def _met(w, pt, phi, event, n):
    return -np.stack(
        [np.bincount(event, w * pt * np.cos(phi), n), np.bincount(event, w * pt * np.sin(phi), n)],
        axis=1,
    )


def test_default_puppi_entry_is_cms_puppi_met_with_no_lepton_weights(mini_dataset):
    """`submissions/puppi`'s default entry, built as the harness builds it, equals PUPPI recomputed
    here from the stored records with puppiNoLep's parameters written out (CMS's RawPuppiMET)."""
    import awkward as ak

    from metbench.data.source import EventSource, read_events
    from metbench.estimators.submission import load_submission
    from metbench.harness import build_estimator

    sub = load_submission(ROOT / "submissions" / "puppi")
    entry, params = sub.entries()[0]
    assert (
        entry == "puppi" and params["weights"] == "nolep" and params.get("tune", "run2") == "run2"
    )
    estimator = build_estimator(sub, entry, params)
    n = 40
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=n))).for_estimator()
    arr = read_events(mini_dataset, "test")[:n]
    assert np.array_equal(ak.to_numpy(arr.event_id), batch.event["event_id"])
    pf = arr.pf
    event = np.repeat(np.arange(n), ak.to_numpy(ak.num(pf)))
    col = {f: ak.to_numpy(ak.flatten(pf[f])).astype(np.float64) for f in pf.fields}
    nolep = replace(PuppiParameters(), no_lep=True, pt_max_photons=20.0)
    w = puppi_weights(event, n, col["pt"], col["eta"], col["phi"], col["mass"], col["charge"],
                      col["pdg_id"], col["dz"], col["from_pv"], ak.to_numpy(arr.n_pv), nolep)  # fmt: skip
    expected = _met(w.astype(np.float64), col["pt"], col["phi"], event, n)
    np.testing.assert_allclose(estimator.predict(batch), expected, rtol=1e-5, atol=2e-3)
    # not the stored (jet) weights: leptons count fully, so the two differ in lepton events
    stored = _met(col["puppi_weight"], col["pt"], col["phi"], event, n)
    assert np.abs(expected - stored).max() > 1.0


def test_puppi_met_recomputes_with_the_phase2_tune_in_chunks(mini_dataset):
    from tests.shipped import shipped

    PuppiMet = shipped("puppi")
    from metbench.data.source import EventSource

    batch = next(iter(EventSource(mini_dataset, "test", batch_size=30))).for_estimator()
    event, slot = np.nonzero(batch.mask)
    f = {name: batch.feature(name)[event, slot] for name in batch.features}
    w = puppi_weights(event, len(batch), f["pt"], f["eta"], f["phi"], f["mass"], f["charge"],
                      f["pdg_id"], f["dz"], f["from_pv"], batch.event["n_pv"],
                      PuppiParameters.no_lepton("phase2"))  # fmt: skip
    expected = _met(w.astype(np.float64), f["pt"], f["phi"], event, len(batch))
    got = PuppiMet("nolep", tune="phase2", chunk=7).predict(batch)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-3)
    np.testing.assert_array_equal(got, PuppiMet("nolep", tune="phase2", chunk=30).predict(batch))
    assert np.abs(got - PuppiMet("nolep").predict(batch)).max() > 1.0
    with pytest.raises(ValueError, match="tune"):
        PuppiMet("nolep", tune="phase1")


def test_puppi_entry_names_and_dataset_tunes():
    """The default entry is `puppi` (puppiNoLep), the stored jet weights are the variant
    `puppi-stored`, and each preset's entry recomputes PUPPI with the preset's tune (the
    manifest keys `default_entry` and `[datasets.<name>]`)."""
    from metbench.data.generate.presets import PRESETS
    from metbench.estimators.submission import load_submission

    sub = load_submission(ROOT / "submissions" / "puppi")
    for name, spec in PRESETS.items():
        entries = dict(sub.entries(dataset=name))
        assert list(entries) == ["puppi", "puppi-stored"], name
        assert entries["puppi"]["weights"] == "nolep"
        assert entries["puppi"].get("tune", "run2") == spec.puppi_tune, name
        assert entries["puppi-stored"]["weights"] == "stored"
