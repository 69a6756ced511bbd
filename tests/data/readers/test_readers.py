"""Readers of the experiments' files, checked against the experiments' own stored numbers."""

from __future__ import annotations

import itertools

import awkward as ak
import numpy as np
import pytest

from metbench.data.cache import converted_file
from metbench.data.readers import convert_file, read_file
from metbench.data.readers.cms import from_pv_from_quality, resample_unstored
from metbench.data.source import EventSource
from metbench.errors import DatasetError
from metbench.estimators.predictions import read_predictions
from metbench.results import find_results, read_results
from tests.commands import cli

uproot = pytest.importorskip("uproot")


@pytest.fixture
def cache(tmp_path):
    return {"METBENCH_DATA": str(tmp_path / "cache")}


def stored_vector(tree, name):
    pt = tree[f"{name}_pt"].array(library="np").astype(np.float64)
    phi = tree[f"{name}_phi"].array(library="np").astype(np.float64)
    return pt, phi


def test_pf_on_pfnano_reproduces_raw_met(shared_data, tmp_path, cache):
    out = tmp_path / "p.parquet"
    r = cli(
        "predict",
        "submissions/pf",
        "--dataset",
        shared_data / "pfnano.root",
        "--out",
        out,
        env=cache,
    )
    assert r.returncode == 0, r.stderr
    pred = read_predictions(out)
    event_id, met = pred.event_id, pred.met
    tree = uproot.open(shared_data / "pfnano.root")["Events"]
    file_events = tree["event"].array(library="np")
    order = np.array([np.flatnonzero(file_events == e)[0] for e in event_id])
    raw_pt, raw_phi = (v[order] for v in stored_vector(tree, "RawMET"))
    # independently, straight from the file's candidate branches
    a = tree.arrays(["PFCands_pt", "PFCands_phi"])
    pt64, phi64 = (ak.values_astype(a[c], np.float64) for c in a.fields)
    direct = np.stack(
        [
            -ak.to_numpy(ak.sum(pt64 * np.cos(phi64), 1)),
            -ak.to_numpy(ak.sum(pt64 * np.sin(phi64), 1)),
        ],
        1,
    )[order]
    np.testing.assert_allclose(met, direct, rtol=1e-5, atol=1e-4)
    ratio = np.hypot(met[:, 0], met[:, 1]) / raw_pt
    # 9 of 10 events within 0.5%; the tenth (RawMET 14.2 GeV) is off by 0.64% already in the
    # direct sum over the file's own candidates: CMSSW computed RawMET before the candidates were
    # packed to reduced precision, so 0.5% on 10/10 cannot be reached from this file
    assert np.sum(np.abs(ratio - 1) < 0.005) >= 9
    assert np.all(np.abs(ratio - 1) < 0.007)
    assert np.all(np.abs(np.hypot(*(met - direct).T)) < 1e-3)
    dphi = np.angle(np.exp(1j * (np.arctan2(met[:, 1], met[:, 0]) - raw_phi)))
    assert np.all(np.abs(dphi) < 0.02)  # 0.016 rad in the 14 GeV event, 0.004 at most elsewhere


def test_pfnano_columns_and_what_is_missing(shared_data, tmp_path):
    events = read_file(shared_data / "pfnano.root")
    assert events.reader == "cms-pfnano" and len(events) == 10
    tree = uproot.open(shared_data / "pfnano.root")["Events"]
    np.testing.assert_array_equal(events.event["n_pu"], tree["Pileup_nPU"].array(library="np"))
    np.testing.assert_array_equal(events.event["n_pv"], tree["PV_npvs"].array(library="np"))
    assert {"from_pv", "truth_is_pileup"} <= set(events.missing)
    assert ak.all(events.candidates.d0[events.candidates.charge == 0] == 0)
    manifest = convert_file(shared_data / "pfnano.root", tmp_path / "pf")
    assert manifest["source"]["has_truth_met"] and "RawMET" in manifest["source"]["stored_met"]
    batch = next(iter(EventSource(tmp_path / "pf", "test", batch_size=10)))
    assert "stored_DeepMETResolutionTune_x" in batch.event


def test_from_pv_rule():
    charge = np.array([1, 1, 1, 1, 0, -1])
    pdg = np.array([211, 211, 211, 211, 22, 13])
    quality = np.array([7, 7, 5, 6, 7, 7])
    dz = np.array([0.01, 0.8, 0.5, 0.9, -1.0, 0.9])
    dz_err = np.full(6, 0.01)
    # PV fit track; another vertex's fit track; dz-compatible (quality 5: first vertex only, so
    # at the PV whatever dz says); other vertex (loose fit); neutral; a muon (PVTight anywhere)
    np.testing.assert_array_equal(
        from_pv_from_quality(charge, pdg, quality, dz, dz_err), [3, 0, 2, 0, 3, 2]
    )


def _candidate_sums(path):
    """Per event, -sum p of PFNano's neutral candidates and our fromPV > 0 charged ones."""
    events = read_file(path)
    cands = events.candidates
    px, py = cands.pt * np.cos(cands.phi), cands.pt * np.sin(cands.phi)
    neutral = cands.charge == 0
    tracked = (cands.charge != 0) & (cands.from_pv > 0)

    def minus_sum(sel):
        return -np.stack([ak.to_numpy(ak.sum(px[sel], 1)), ak.to_numpy(ak.sum(py[sel], 1))], 1)

    return minus_sum(neutral), minus_sum(tracked)


def _xy(tree, name):
    pt, phi = stored_vector(tree, name)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi)], 1)


def test_chs_minus_track_met_is_the_neutral_sum(shared_data):
    """The file's own configuration (``data provenance``) says ChsMET sums candidates with
    fromPV(0) > 0 and TkMET the charged ones among them; neutrals have fromPV 3, so the
    difference must be exactly the neutral candidates, whatever the vertex association."""
    tree = uproot.open(shared_data / "pfnano.root")["Events"]
    neutral, _ = _candidate_sums(shared_data / "pfnano.root")
    diff = _xy(tree, "ChsMET") - _xy(tree, "TkMET")
    assert np.all(np.hypot(*(diff - neutral).T) < 1.0)  # GeV, NanoAOD's reduced precision


def test_inferred_from_pv_against_the_stored_track_met(shared_data):
    """NANO's TkMET = -sum p over charged candidates with fromPV(0) > 0: an independent check of
    the inferred vertex association. Measured: 9 of 10 events within 8.1 GeV of |TkMET| 39-1228
    GeV. Event 1735806 is off by 83 GeV: tracks fitted to the vertex 0.028 cm from the PV (the
    second stored in OtherPV_z) are not counted by CMS; counting that vertex's tracks out fixes it
    but breaks 1735808, where CMS counts them (PVLoose for a vertex with ndof < 4, not stored)."""
    tree = uproot.open(shared_data / "pfnano.root")["Events"]
    _, tracked = _candidate_sums(shared_data / "pfnano.root")
    off = np.hypot(*(tracked - _xy(tree, "TkMET")).T)
    events = tree["event"].array(library="np")
    assert np.sum(off < 8.5) == 9 and off[events == 1735806][0] > 50


def test_tracks_without_details_are_soft(shared_data):
    """PFNano writes d0 = dz = -1 where the packed candidate has no track details: here every
    one of them is below 0.5 GeV, and they are 41% of the charged candidates."""
    tree = uproot.open(shared_data / "pfnano.root")["Events"]
    arr = tree.arrays(["PFCands_pt", "PFCands_charge", "PFCands_dzErr", "PFCands_d0"])
    charged = ak.flatten(arr.PFCands_charge) != 0
    bare = charged & (ak.flatten(arr.PFCands_dzErr) < 0)
    assert ak.all(ak.flatten(arr.PFCands_d0)[bare] == -1)
    assert ak.max(ak.flatten(arr.PFCands_pt)[bare]) <= 0.5
    assert 0.35 < ak.sum(bare) / ak.sum(charged) < 0.45


def test_resample_unstored_changes_only_the_soft_bare_tracks(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("METBENCH_DATA", str(tmp_path))
    folder = converted_file(shared_data / "pfnano.root")
    batch = next(iter(EventSource(folder, "test", batch_size=10))).for_estimator()
    drawn = resample_unstored(batch, np.random.default_rng(3))
    bare = (
        batch.mask & (batch.feature("charge") != 0)
        & (batch.feature("d0") == -1) & (batch.feature("dz") == -1)
    )  # fmt: skip
    changed = np.any(drawn.particles != batch.particles, axis=-1)
    assert changed.sum() > 0.9 * bare.sum() and not np.any(changed & ~bare)
    moved = [batch.features.index(n) for n in ("d0", "dz", "from_pv")]
    others = [i for i in range(len(batch.features)) if i not in moved]
    np.testing.assert_array_equal(drawn.particles[..., others], batch.particles[..., others])
    assert np.all(drawn.feature("dz")[bare] != -1)  # drawn from tracked candidates


def test_cms_stored_on_nanoaod_matches_the_branches(shared_data, tmp_path, cache):
    f = shared_data / "nano_dy.root"
    results = tmp_path / "results"
    r = cli(
        "run", "submissions/cms-stored", "--dataset", f, "--results", results,
        "--no-throughput", "--n-boot", "0", env=cache,
    )  # fmt: skip
    # nano_dy (NanoAODv6) has no DeepMET and no RawPuppiMET: those variants fail, the rest run
    assert r.returncode == 2 and "3 of 9 entries failed" in r.stderr
    assert "stores no DeepMETResolutionTune" in r.stderr
    found = {p.stem: read_results(p) for p in find_results([results])}
    assert set(found) == {f"cms-stored-{v}" for v in ("raw", "type1", "chs", "tk", "puppi", "calo")}
    tree = uproot.open(f)["Events"]
    pt, phi = stored_vector(tree, "PuppiMET")
    _, gphi = stored_vector(tree, "GenMET")
    gpt, _ = stored_vector(tree, "GenMET")
    perp = pt * np.sin(phi - gphi)
    # CMS's quantile width of e_perp in each bin of the true |MET| (CMS edges), by hand
    truth_bins = found["cms-stored-puppi"]["scores"]["tasks"]["met"]["bins"]["truth"]
    edges = [e if e is not None else np.inf for e in truth_bins["edges"]]
    got = truth_bins["figures"]["sigma_perp"]["value"]
    checked = 0
    for k, (lo, hi) in enumerate(itertools.pairwise(edges)):
        inside = (gpt >= lo) & (gpt < hi)
        if inside.sum() < 2:
            assert got[k] is None
            continue
        expected = np.diff(np.percentile(perp[inside], [16, 84], method="inverted_cdf"))[0] / 2
        assert got[k] == pytest.approx(expected, rel=1e-4, abs=1e-4)
        checked += 1
    assert checked >= 3


def test_physlite_truth_pileup_and_no_candidates(shared_data, tmp_path, cache):
    f = shared_data / "PHYSLITE_example.root"
    events = read_file(f)
    tree = uproot.open(f)["CollectionTree"]
    names = tree["MET_TruthAuxDyn.name"].array()
    mpx = tree["MET_TruthAuxDyn.mpx"].array()
    nonint = np.array(
        [x[list(n).index("NonInt")] for n, x in zip(names.tolist(), mpx.tolist(), strict=True)]
    )
    np.testing.assert_allclose(events.event["gen_met_x"], nonint / 1000, rtol=1e-6)
    vt = tree["PrimaryVerticesAuxDyn.vertexType"].array()
    assert events.event["n_pv"][0] == sum(v != 0 for v in vt[0].tolist())
    assert events.candidates is None and set(events.stored_met) == {"PVSoftTrkCore", "SoftClusCore"}
    r = cli("run", "submissions/pf", "--dataset", f, "--results", tmp_path / "r", env=cache)
    assert (
        r.returncode == 2
        and "has no particle-flow candidates" in r.stderr
        and "Traceback" not in r.stderr
    )


def write_delphes(path, with_truth=True, underscore=False):
    rng = np.random.default_rng(1)
    n = 6
    sep = "_" if underscore else "."

    def jag(counts, values):
        return ak.unflatten(values, counts)

    nt, nph, nnh = rng.integers(5, 20, n), rng.integers(2, 8, n), rng.integers(1, 5, n)
    branches = {
        f"EFlowTrack{sep}PT": jag(nt, rng.exponential(3, nt.sum()).astype(np.float32)),
        f"EFlowTrack{sep}Eta": jag(nt, rng.uniform(-2.5, 2.5, nt.sum()).astype(np.float32)),
        f"EFlowTrack{sep}Phi": jag(nt, rng.uniform(-3, 3, nt.sum()).astype(np.float32)),
        f"EFlowTrack{sep}Charge": jag(nt, rng.choice([-1, 1], nt.sum()).astype(np.int32)),
        f"EFlowTrack{sep}PID": jag(nt, rng.choice([211, 13, 11], nt.sum()).astype(np.int32)),
        f"EFlowTrack{sep}IsPU": jag(nt, rng.integers(0, 2, nt.sum()).astype(np.int32)),
        f"EFlowTrack{sep}D0": jag(nt, rng.normal(0, 0.1, nt.sum()).astype(np.float32)),
        f"EFlowTrack{sep}DZ": jag(nt, rng.normal(0, 1.0, nt.sum()).astype(np.float32)),
        f"EFlowPhoton{sep}ET": jag(nph, rng.exponential(2, nph.sum()).astype(np.float32)),
        f"EFlowPhoton{sep}Eta": jag(nph, rng.uniform(-3, 3, nph.sum()).astype(np.float32)),
        f"EFlowPhoton{sep}Phi": jag(nph, rng.uniform(-3, 3, nph.sum()).astype(np.float32)),
        f"EFlowNeutralHadron{sep}ET": jag(nnh, rng.exponential(4, nnh.sum()).astype(np.float32)),
        f"EFlowNeutralHadron{sep}Eta": jag(nnh, rng.uniform(-4, 4, nnh.sum()).astype(np.float32)),
        f"EFlowNeutralHadron{sep}Phi": jag(nnh, rng.uniform(-3, 3, nnh.sum()).astype(np.float32)),
        f"MissingET{sep}MET": jag(np.ones(n, int), rng.uniform(0, 50, n).astype(np.float32)),
        f"MissingET{sep}Phi": jag(np.ones(n, int), rng.uniform(-3, 3, n).astype(np.float32)),
    }
    if with_truth:
        branches[f"GenMissingET{sep}MET"] = jag(
            np.ones(n, int), rng.uniform(0, 50, n).astype(np.float32)
        )
        branches[f"GenMissingET{sep}Phi"] = jag(
            np.ones(n, int), rng.uniform(-3, 3, n).astype(np.float32)
        )
    with uproot.recreate(path) as f:  # a TTree, as Delphes writes (not an RNTuple)
        f.mktree("Delphes", {k: v.type for k, v in branches.items()})
        f["Delphes"].extend(branches)
    return branches


@pytest.mark.parametrize("underscore", [False, True])
def test_delphes_layout_by_branch_names(tmp_path, underscore, cache):
    path = tmp_path / "delphes.root"
    b = write_delphes(path, underscore=underscore)
    sep = "_" if underscore else "."
    events = read_file(path)
    c = events.candidates
    assert ak.to_list(ak.num(c)) == ak.to_list(
        ak.num(b[f"EFlowTrack{sep}PT"])
        + ak.num(b[f"EFlowPhoton{sep}ET"])
        + ak.num(b[f"EFlowNeutralHadron{sep}ET"])
    )
    tracks = c[c.charge != 0]
    np.testing.assert_allclose(
        ak.to_numpy(ak.flatten(tracks.dz)),
        ak.to_numpy(ak.flatten(b[f"EFlowTrack{sep}DZ"])) / 10,
        rtol=1e-6,
    )
    np.testing.assert_array_equal(
        ak.to_numpy(ak.flatten(tracks.truth_is_pileup)),
        ak.to_numpy(ak.flatten(b[f"EFlowTrack{sep}IsPU"])) == 1,
    )
    assert set(ak.to_numpy(ak.flatten(c.pdg_id[c.charge == 0]))) <= {22, 130}
    assert set(np.abs(ak.to_numpy(ak.flatten(tracks.pdg_id)))) <= {11, 13, 211}
    np.testing.assert_allclose(
        events.event["gen_met_x"],
        ak.to_numpy(ak.firsts(b[f"GenMissingET{sep}MET"]))
        * np.cos(ak.to_numpy(ak.firsts(b[f"GenMissingET{sep}Phi"]))),
        rtol=1e-6,
    )
    assert "MissingET" in events.stored_met
    # and PF MET over the file's candidates through the whole harness
    out = tmp_path / "p.parquet"
    r = cli("predict", "submissions/pf", "--dataset", path, "--out", out, env=cache)
    assert r.returncode == 0, r.stderr
    met = read_predictions(out).met
    px = -(ak.sum(c.pt * np.cos(c.phi), 1))
    np.testing.assert_allclose(met[:, 0], ak.to_numpy(px), rtol=1e-5, atol=1e-4)


def test_a_file_without_truth_can_be_predicted_not_scored(tmp_path, cache):
    path = tmp_path / "notruth.root"
    write_delphes(path, with_truth=False)
    out = tmp_path / "p.parquet"
    assert (
        cli("predict", "submissions/pf", "--dataset", path, "--out", out, env=cache).returncode == 0
    )
    r = cli("score", out, "--dataset", path, env=cache)
    assert r.returncode == 2 and "has no truth MET" in r.stderr and "not scored" in r.stderr


def test_bad_delphes_is_refused(shared_data, tmp_path, cache):
    with pytest.raises(DatasetError, match="holds no objects at all"):
        read_file(shared_data / "bad_delphes.root")
    r = cli(
        "predict",
        "submissions/pf",
        "--dataset",
        shared_data / "bad_delphes.root",
        "--out",
        tmp_path / "p.parquet",
        env=cache,
    )
    assert r.returncode == 2 and "bad_delphes.root" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p.parquet").exists()
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"not a root file at all")
    with pytest.raises(DatasetError, match="not a readable ROOT file"):
        read_file(junk)


def test_conversion_is_cached_by_content(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("METBENCH_DATA", str(tmp_path))
    a = converted_file(shared_data / "nano_dy.root")
    stamp = (a / "manifest.json").stat().st_mtime_ns
    assert converted_file(shared_data / "nano_dy.root") == a
    assert (a / "manifest.json").stat().st_mtime_ns == stamp
