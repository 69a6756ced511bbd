"""The baselines against independent computations on the stored events and on hand-made events."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest

from metbench.data.source import EventSource
from metbench.events import PARTICLE_FEATURES, EventBatch
from metbench.physics.kinematics import rapidity
from metbench.physics.objects import met_terms
from metbench.physics.softkiller import softkiller_grid, softkiller_threshold
from tests.shipped import shipped

PfMet, ChsMet, TrackMet = shipped("pf"), shipped("chs"), shipped("track")
PuppiMet, OracleMet = shipped("puppi"), shipped("oracle")
AtlasWorkingPointMet, SoftKillerMet = shipped("atlas-wp"), shipped("softkiller")


def first_batch(folder, n=60):
    return next(iter(EventSource(folder, "test", batch_size=n)))


def awkward_met(arr, select):
    """-sum pT over selected candidates, straight from the stored jagged records."""
    pf = arr.pf[select(arr.pf)]
    return np.stack(
        [
            -ak.to_numpy(ak.sum(pf.pt * np.cos(pf.phi), axis=1)),
            -ak.to_numpy(ak.sum(pf.pt * np.sin(pf.phi), axis=1)),
        ],
        1,
    )


@pytest.mark.parametrize(
    ("estimator", "select"),
    [
        (PfMet(), lambda pf: pf.pt > -1),
        (ChsMet(), lambda pf: pf.from_pv > 0),
        (TrackMet(), lambda pf: (pf.charge != 0) & (pf.from_pv >= 2)),
        (TrackMet(min_from_pv=1), lambda pf: (pf.charge != 0) & (pf.from_pv > 0)),
        (PuppiMet(), None),
        (OracleMet(), lambda pf: ~pf.truth_is_pileup),
    ],
)
def test_candidate_sums_match_the_stored_records(mini_dataset, estimator, select):
    source = EventSource(mini_dataset, "test", batch_size=80)
    arr = next(source.iter_arrays())
    batch = next(iter(source))
    visible = batch if isinstance(estimator, OracleMet) else batch.for_estimator()
    got = estimator.predict(visible)
    if select is None:  # PUPPI: weights times momenta
        pf = arr.pf
        w = pf.puppi_weight
        expected = np.stack(
            [
                -ak.to_numpy(ak.sum(w * pf.pt * np.cos(pf.phi), 1)),
                -ak.to_numpy(ak.sum(w * pf.pt * np.sin(pf.phi), 1)),
            ],
            1,
        )
    else:
        expected = awkward_met(arr, select)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-3)


def test_oracle_refuses_to_run_without_truth(mini_dataset):
    with pytest.raises(KeyError, match="truth_is_pileup"):
        OracleMet().predict(first_batch(mini_dataset, 4).for_estimator())


def test_puppi_nolep_gives_leptons_weight_one(mini_dataset):
    batch = first_batch(mini_dataset, 40).for_estimator()
    stored = PuppiMet("stored").predict(batch)
    nolep = PuppiMet("nolep").predict(batch)
    # the difference is exactly the (1 - w) share of leptons and hard photons that nolep restores,
    # plus the changed neighbourhood; at least the events with a PV lepton whose stored weight
    # is below 1 must move
    pdg = np.abs(batch.feature("pdg_id"))
    lep = batch.mask & np.isin(pdg, (11, 13)) & (batch.feature("puppi_weight") < 0.99)
    moved = np.abs(stored - nolep).max(1) > 1e-3
    assert lep.any(1).sum() > 0
    assert np.all(moved[lep.any(1)])


def softkiller_by_loops(pt, eta, phi, mass, y_max=5.0, size=0.4):
    """fastjet-contrib SoftKiller written out particle by particle (independent of the code)."""
    n_y = max(int((2 * y_max) / size + 0.5), 1)
    n_phi = int(2 * math.pi / size + 0.5)
    dy, dphi = 2 * y_max / n_y, 2 * math.pi / n_phi
    maxima = [0.0] * (n_y * n_phi)
    for p, e, f, m in zip(pt, eta, phi, mass, strict=True):
        pz = p * math.sinh(e)
        y = math.asinh(pz / math.sqrt(p * p + m * m))
        if y + y_max < 0:
            continue
        iy = int((y + y_max) / dy)
        if iy >= n_y:
            continue
        iphi = int((f % (2 * math.pi)) / dphi)
        if iphi == n_phi:
            iphi = 0
        maxima[iy * n_phi + iphi] = max(maxima[iy * n_phi + iphi], p * p)
    cut2 = (1 + 1e-12) * sorted(maxima)[len(maxima) // 2]
    return math.sqrt(cut2 / (1 + 1e-12)), [p * p >= cut2 for p in pt]


def test_softkiller_matches_a_particle_by_particle_implementation(mini_dataset):
    batch = first_batch(mini_dataset, 12).for_estimator()
    pt = batch.feature("pt").astype(np.float64)
    y = rapidity(
        pt, batch.feature("eta").astype(np.float64), batch.feature("mass").astype(np.float64)
    )
    thresholds = softkiller_threshold(pt, y, batch.feature("phi"), batch.mask)
    for i in range(len(batch)):
        m = batch.mask[i]
        ref, _ = softkiller_by_loops(
            pt[i, m], batch.feature("eta")[i, m].astype(float), batch.feature("phi")[i, m].astype(float),
            batch.feature("mass")[i, m].astype(float),
        )  # fmt: skip
        assert thresholds[i] == pytest.approx(ref, rel=1e-12)
        assert thresholds[i] > 0  # mu up to 80 fills more than half the tiles


def test_softkiller_grid_and_edge_cases():
    assert softkiller_grid(5.0, 0.4)[:2] == (25, 16)
    # one event: 201 tiles get a 1 GeV candidate, so the median tile maximum is 1 GeV; a candidate
    # exactly at 1 GeV is removed, one above kept, and the cut also hits candidates beyond |y| = 5
    _n_y, n_phi, dy, dphi = softkiller_grid(5.0, 0.4)
    tiles = np.arange(201)
    eta = -5 + (tiles // n_phi + 0.5) * dy
    phi = (tiles % n_phi + 0.5) * dphi
    phi = np.where(phi > np.pi, phi - 2 * np.pi, phi)
    pt = np.ones(201)
    extra_pt = np.array([1.5, 0.9, 0.5])  # |eta| = 6 for the last: outside the grid
    extra_eta = np.array([0.05, 0.05, 6.0])
    batch = make_batch(
        np.concatenate([pt, extra_pt]), np.concatenate([eta, extra_eta]),
        np.concatenate([phi, [0.05, 0.05, 0.05]]),
    )  # fmt: skip
    met = SoftKillerMet().predict(batch)
    # every 1 GeV candidate is removed, only the 1.5 GeV one survives
    np.testing.assert_allclose(met[0], [-1.5 * np.cos(0.05), -1.5 * np.sin(0.05)], rtol=1e-6)


def make_batch(pt, eta, phi, charge=None, from_pv=None, pdg_id=None, truth_pu=None):
    n = len(pt)
    cols = {
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "mass": np.zeros(n),
        "charge": np.zeros(n) if charge is None else charge,
        "pdg_id": np.full(n, 22) if pdg_id is None else pdg_id,
        "d0": np.zeros(n),
        "dz": np.zeros(n),
        "from_pv": np.full(n, 3) if from_pv is None else from_pv,
        "puppi_weight": np.ones(n),
    }
    order = np.argsort(-np.asarray(pt), kind="stable")
    particles = np.stack([np.asarray(cols[k], np.float32)[order] for k in PARTICLE_FEATURES], -1)[
        None
    ]
    truth = {} if truth_pu is None else {"truth_is_pileup": np.asarray(truth_pu)[order][None]}
    return EventBatch(
        particles, np.ones((1, n), bool), PARTICLE_FEATURES,
        {"event_id": np.array([1]), "mu": np.array([0.0], np.float32), "n_pv": np.array([1], np.int32)},
        truth,
    )  # fmt: skip


def jet(pt, eta, phi, n=10, charged_pv=True, rng=None):
    """n collinear charged candidates making up a jet of the given pT."""
    rng = rng or np.random.default_rng(0)
    d_eta, d_phi = rng.normal(0, 0.03, n), rng.normal(0, 0.03, n)
    return (
        np.full(n, pt / n), eta + d_eta, phi + d_phi, np.ones(n),
        np.full(n, 3 if charged_pv else 1), np.full(n, 211),
    )  # fmt: skip


def test_atlas_working_points_on_a_hand_made_event():
    parts = [
        jet(100.0, 0.5, 1.0),  # hard central jet from the PV: in every WP
        jet(25.0, -1.0, -2.0, charged_pv=False),  # central 25 GeV jet of pileup tracks: JVF 0
        jet(32.0, 3.0, 2.5),  # forward 32 GeV: Loose and Tight (> 30), not Tighter/Tenacious (35)
        (
            np.array([30.0]),
            np.array([0.2]),
            np.array([-1.0]),
            np.array([-1.0]),
            np.array([3]),
            np.array([13]),
        ),
        (
            np.array([2.0]),
            np.array([1.5]),
            np.array([-0.5]),
            np.array([1.0]),
            np.array([3]),
            np.array([211]),
        ),
    ]
    pt, eta, phi, charge, from_pv, pdg = (np.concatenate(x) for x in zip(*parts, strict=True))
    # the pileup jet's tracks: not from the PV, but not removed by CHS either (from_pv = 1), as in
    # CMS's PVLoose; the JVF (PV track fraction) is 0
    batch = make_batch(pt, eta, phi, charge, from_pv, pdg)
    terms = met_terms(batch)

    def vec(p, f):
        return np.array([p * np.cos(f), p * np.sin(f)])

    np.testing.assert_allclose(terms["leptons"][0], -vec(30.0, -1.0), rtol=1e-4)
    soft = -vec(2.0, -0.5)
    for wp, n_jets in (("loose", 2), ("tight", 2), ("tighter", 1), ("tenacious", 1)):
        assert terms[f"{wp}_n_jets"][0] == n_jets, wp
        np.testing.assert_allclose(terms[f"{wp}_soft"][0], soft, atol=1e-3)
    hard = terms["tight_jets"][0]
    assert np.hypot(*hard) == pytest.approx(np.hypot(*(vec(100, 1.0) + vec(32, 2.5))), rel=0.01)
    np.testing.assert_allclose(
        AtlasWorkingPointMet("tight").predict(batch)[0],
        terms["leptons"][0] + terms["tight_jets"][0] + soft,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="unknown working point"):
        AtlasWorkingPointMet("medium")


def test_met_terms_in_chunks_equal_one_call(mini_dataset):
    """The working points are clustered a few events at a time (bounded memory at pu200): every
    term of every event is the same as in one call on the whole batch."""
    batch = first_batch(mini_dataset, 45).for_estimator()
    whole = met_terms(batch, chunk=len(batch))
    chunked = met_terms(batch, chunk=7)
    assert whole.keys() == chunked.keys()
    assert np.abs(whole["tight"]).max() > 10.0
    for key, value in whole.items():
        np.testing.assert_allclose(chunked[key], value, rtol=1e-12, atol=1e-9, err_msg=key)


def batch_of_events(events):
    """An EventBatch of several hand-made events (dicts of candidate columns; an event may be
    empty), padded to the longest."""
    width = max(1, *(len(e["pt"]) for e in events))
    particles = np.zeros((len(events), width, len(PARTICLE_FEATURES)), np.float32)
    mask = np.zeros((len(events), width), bool)
    for i, e in enumerate(events):
        k = len(e["pt"])
        order = np.argsort(-np.asarray(e["pt"]), kind="stable")
        for j, name in enumerate(PARTICLE_FEATURES):
            particles[i, :k, j] = np.asarray(e.get(name, np.zeros(k)), np.float32)[order]
        mask[i, :k] = True
    n = len(events)
    event = {"event_id": np.arange(n), "mu": np.zeros(n, np.float32), "n_pv": np.ones(n, np.int32)}
    return EventBatch(particles, mask, PARTICLE_FEATURES, event)


def soft_event(rng, n, from_pv=3):
    """Soft candidates only (charged hadrons and photons below 5 GeV, |eta| < 2.4): no jet
    reaches 20 GeV. No pT falls between 0.4 and 0.5 GeV (the soft term's track threshold)."""
    charged = rng.random(n) < 0.6
    pt = rng.uniform(0.5, 4.0, n)
    pt[:3] = (0.2, 0.3, 0.35)  # below every track threshold
    return {
        "pt": pt,
        "eta": rng.uniform(-2.4, 2.4, n),
        "phi": rng.uniform(-np.pi, np.pi, n),
        "charge": charged.astype(float),
        "pdg_id": np.where(charged, 211, 22),
        "from_pv": np.where(rng.random(n) < 0.2, 0, from_pv),
    }


def with_jet(event, rng, pt=60.0, eta=0.3, phi=1.0, n=12):
    """The event plus a jet of n charged PV tracks around (eta, phi); the event's own candidates
    are moved out of the jet's reach (Delta phi > 1.2)."""
    out = dict(event)
    far = np.mod(event["phi"] - phi + np.pi, 2 * np.pi) - np.pi
    out["phi"] = np.where(np.abs(far) < 1.2, event["phi"] + np.pi, event["phi"])
    jet_cols = {
        "pt": np.full(n, pt / n),
        "eta": eta + rng.normal(0, 0.03, n),
        "phi": phi + rng.normal(0, 0.03, n),
        "charge": np.ones(n),
        "pdg_id": np.full(n, 211),
        "from_pv": np.full(n, 3),
    }
    return {k: np.concatenate([out[k], jet_cols[k]]) for k in jet_cols}, jet_cols


def independent_soft_term(e, exclude=None):
    """-sum of the track soft term's candidates, straight from the columns: charged, from the PV,
    |eta| < 2.5, pT above the track threshold, no lepton, not in a selected jet."""
    sel = (
        (np.asarray(e["charge"]) != 0)
        & (np.asarray(e["from_pv"]) >= 2)
        & (np.abs(e["eta"]) < 2.5)
        & (np.asarray(e["pt"]) > 0.5)
        & ~np.isin(np.abs(e["pdg_id"]), (11, 13))
    )
    if exclude is not None:
        sel &= ~exclude
    pt, phi = np.asarray(e["pt"])[sel], np.asarray(e["phi"])[sel]
    return -np.array([np.sum(pt * np.cos(phi)), np.sum(pt * np.sin(phi))]), float(np.sum(pt))


def test_met_terms_of_events_without_jets():
    """A batch (or a 64-event chunk) in which no jet passes 20 GeV used to crash met_terms
    (`metbench predict submissions/metnet-torch`, mini with 1000 events per process, batch 28):
    its terms are the soft and lepton terms computed from the candidates, and jets are zero."""
    rng = np.random.default_rng(11)
    events = [soft_event(rng, 40), soft_event(rng, 25)]
    lepton = {"pt": [35.0], "eta": [0.4], "phi": [2.0], "charge": [-1.0], "pdg_id": [13],
              "from_pv": [3]}  # fmt: skip
    events[1] = {k: np.concatenate([events[1][k], lepton[k]]) for k in lepton}
    terms = met_terms(batch_of_events(events))
    for i, e in enumerate(events):
        soft, soft_sumet = independent_soft_term(e)
        lep = -np.array([35.0 * np.cos(2.0), 35.0 * np.sin(2.0)]) if i == 1 else np.zeros(2)
        np.testing.assert_allclose(terms["leptons"][i], lep, rtol=1e-5, atol=1e-9)
        for wp in ("loose", "tight", "tighter", "tenacious"):
            assert terms[f"{wp}_n_jets"][i] == 0
            np.testing.assert_array_equal(terms[f"{wp}_jets"][i], [0.0, 0.0])
            assert terms[f"{wp}_jets_sumet"][i] == 0.0
            np.testing.assert_allclose(terms[f"{wp}_soft"][i], soft, rtol=1e-5, atol=1e-4)
            assert terms[f"{wp}_soft_sumet"][i] == pytest.approx(soft_sumet, rel=1e-5)
            np.testing.assert_allclose(terms[wp][i], lep + soft, rtol=1e-5, atol=1e-4)
    assert all(v.dtype == np.float64 for v in terms.values())


def test_met_terms_of_a_batch_mixing_events_with_and_without_jets():
    """Events with a jet, without, without any candidate, and with pileup only: each event's
    terms are its own (as in a batch of its own, and in chunks of one event)."""
    rng = np.random.default_rng(12)
    jet_event, jet_cols = with_jet(soft_event(rng, 30), rng)
    events = [
        soft_event(rng, 30),
        jet_event,
        {name: np.zeros(0) for name in ("pt", "eta", "phi", "charge", "pdg_id", "from_pv")},
        soft_event(rng, 20, from_pv=0),  # pileup only: no jet input, no soft term
        with_jet(soft_event(rng, 10), rng, pt=80.0, eta=-1.0, phi=-2.0)[0],
    ]
    batch = batch_of_events(events)
    terms = met_terms(batch)
    assert list(terms["tight_n_jets"]) == [0, 1, 0, 0, 1]
    for i, e in enumerate(events):
        alone = met_terms(batch_of_events([e]))
        for key, value in terms.items():
            np.testing.assert_allclose(value[i], alone[key][0], rtol=1e-12, atol=1e-9, err_msg=key)
    one_by_one = met_terms(batch, chunk=1)
    for key, value in terms.items():
        np.testing.assert_allclose(one_by_one[key], value, rtol=1e-12, atol=1e-9, err_msg=key)
    # the jet event: the jet is the sum of its tracks, the soft term the other tracks
    n_jet = len(jet_cols["pt"])
    in_jet = np.r_[np.zeros(len(jet_event["pt"]) - n_jet, bool), np.ones(n_jet, bool)]
    soft, soft_sumet = independent_soft_term(jet_event, exclude=in_jet)
    jet_vec = -np.array(
        [
            np.sum(jet_cols["pt"] * np.cos(jet_cols["phi"])),
            np.sum(jet_cols["pt"] * np.sin(jet_cols["phi"])),
        ]
    )
    np.testing.assert_allclose(terms["tight_jets"][1], jet_vec, rtol=1e-4)
    np.testing.assert_allclose(terms["tight_soft"][1], soft, rtol=1e-5, atol=1e-4)
    assert terms["tight_soft_sumet"][1] == pytest.approx(soft_sumet, rel=1e-5)
    np.testing.assert_allclose(terms["tight"][1], jet_vec + soft, rtol=1e-4, atol=1e-3)
    # events without jets: total = soft term; the empty and the pileup-only events: all zero
    np.testing.assert_allclose(terms["tight"][0], independent_soft_term(events[0])[0], atol=1e-4)
    for i in (2, 3):
        assert np.all(terms["tight"][i] == 0) and terms["tight_soft_sumet"][i] == 0


def test_metnet_features_of_a_batch_without_jets():
    """METNet's inputs (the path of the reported crash) on events without a jet."""
    from metbench.nn.metnet import FEATURE_NAMES, metnet_features

    rng = np.random.default_rng(13)
    features, tight_phi = metnet_features(batch_of_events([soft_event(rng, 30) for _ in range(3)]))
    assert features.shape == (3, len(FEATURE_NAMES)) and np.isfinite(features).all()
    assert np.isfinite(tight_phi).all()
