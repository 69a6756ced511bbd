"""The CMS-style recoil: the dimuon selection, the muon-removed input and the harness's recoil
predictions, against independent per-event computations on the mini dataset."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from metbench.data.source import EventSource
from metbench.recoil import remove_candidates, select_dimuons, select_dimuons_in_batch

MUON_MASS = 0.1056583755


def _events(folder, split="test", process="z_mumu"):
    source = EventSource(folder, split, processes=[process])
    return ak.concatenate(list(source.iter_files(["event_id", "pf"])))


def _by_hand(event) -> tuple[bool, tuple[int, int] | None, np.ndarray | None]:
    """The selection, one event at a time in plain Python."""
    pf = {c: ak.to_list(event.pf[c]) for c in ("pt", "eta", "phi", "mass", "charge", "pdg_id")}
    muons = [
        i
        for i in range(len(pf["pt"]))
        if abs(pf["pdg_id"][i]) == 13 and pf["pt"][i] > 20.0 and abs(pf["eta"][i]) < 2.4
    ]
    muons.sort(key=lambda i: -pf["pt"][i])
    if len(muons) < 2:
        return False, None, None
    i, j = muons[:2]
    p = np.zeros(4)
    for k in (i, j):
        pt, eta, phi, m = (float(pf[c][k]) for c in ("pt", "eta", "phi", "mass"))
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        p += [px, py, pz, np.sqrt(px * px + py * py + pz * pz + m * m)]
    mass = np.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))
    ok = pf["pt"][i] > 25.0 and pf["charge"][i] * pf["charge"][j] < 0 and 80.0 < mass < 100.0
    return ok, (i, j), p[:2] if ok else None


def test_selection_equals_a_per_event_loop(mini_dataset):
    arr = _events(mini_dataset)
    counts = ak.to_numpy(ak.num(arr.pf.pt))
    event = np.repeat(np.arange(len(arr)), counts)
    flat = {
        c: ak.to_numpy(ak.flatten(arr.pf[c]))
        for c in ("pt", "eta", "phi", "mass", "charge", "pdg_id")
    }
    sel = select_dimuons(event, len(arr), **flat)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    n_selected = 0
    for k in range(len(arr)):
        ok, pair, qt = _by_hand(arr[k])
        assert bool(sel.selected[k]) == ok, k
        if ok:
            n_selected += 1
            assert (sel.first[k] - starts[k], sel.second[k] - starts[k]) == pair
            np.testing.assert_allclose(sel.qt[k], qt, rtol=1e-9)
        else:
            assert np.isnan(sel.qt[k]).all()
    # a Z -> mu mu sample with pileup: a good part, not all, passes
    assert 0.2 * len(arr) < n_selected < 0.9 * len(arr)
    stored_mass = float(np.median(flat["mass"][np.abs(flat["pdg_id"]) == 13]))
    assert stored_mass == pytest.approx(MUON_MASS, rel=1e-3)


def test_removing_the_muons_keeps_the_other_candidates_in_order(mini_dataset):
    batch = next(iter(EventSource(mini_dataset, "test", batch_size=400, processes=["z_mumu"])))
    sel, _, slot = select_dimuons_in_batch(batch)
    rows = np.flatnonzero(sel.selected)
    assert len(rows) > 5
    slots = np.stack([slot[sel.first[rows]], slot[sel.second[rows]]], 1)
    without = remove_candidates(batch.for_estimator(), rows, slots)
    for i, r in enumerate(rows):
        n = int(batch.mask[r].sum())
        keep = np.setdiff1d(np.arange(n), slots[i])
        assert int(without.mask[i].sum()) == n - 2
        np.testing.assert_array_equal(without.particles[i, : n - 2], batch.particles[r, keep])
        assert not without.particles[i, n - 2 :].any()  # padding stays zero at the end
        assert not (np.abs(without.feature("pdg_id")[i, : n - 2]) == 13).all()
    again, _, _ = select_dimuons_in_batch(without)
    assert not again.selected.all()  # without its dimuon most events fail the selection


def test_pf_recoil_through_the_harness_equals_a_hand_computation(mini_dataset, tmp_path):
    """`metbench run submissions/pf`: the recoil task holds every selected Z -> mu mu event, the
    estimate on the muon-removed event is minus the sum of the other candidates, and qT the
    dimuon's."""
    from pathlib import Path

    from metbench.estimators.predictions import read_predictions, read_recoil
    from metbench.estimators.submission import load_submission
    from metbench.harness import dataset_info, run_entry
    from metbench.results import read_results

    root = Path(__file__).resolve().parents[1]
    sub = load_submission(root / "submissions" / "pf")
    info = dataset_info(mini_dataset)
    path, _ = run_entry(sub, "pf", {}, info, "test", tmp_path, n_boot=0)
    result = read_results(path)
    pred = path.with_name("pf.predictions.parquet")
    read = read_predictions(pred)
    event_id, met = read.event_id, read.met
    recoil = read_recoil(pred)
    by_id = {int(i): k for k, i in enumerate(event_id)}

    arr = _events(mini_dataset)
    expected_e, expected_qt = [], []
    for k in range(len(arr)):
        ok, pair, qt = _by_hand(arr[k])
        row = by_id[int(arr[k].event_id)]
        if not ok:
            continue
        pt = ak.to_numpy(arr[k].pf.pt).astype(float)
        phi = ak.to_numpy(arr[k].pf.phi).astype(float)
        keep = np.ones(len(pt), bool)
        keep[list(pair)] = False
        e = -np.array([(pt * np.cos(phi))[keep].sum(), (pt * np.sin(phi))[keep].sum()])
        np.testing.assert_allclose(recoil[row], e, rtol=1e-6, atol=1e-4)
        # PF on the full event: the same sum with the muons, i.e. e - qT
        np.testing.assert_allclose(met[row], e - qt, rtol=1e-6, atol=1e-4)
        expected_e.append(e)
        expected_qt.append(qt)
    task = result["scores"]["tasks"]["recoil"]
    assert task["n_events"] == len(expected_e)
    e, q = np.array(expected_e), np.array(expected_qt)
    qt_mag = np.hypot(q[:, 0], q[:, 1])
    region = qt_mag >= 30
    u_par = -((e * q).sum(1) / qt_mag)
    assert task["overall"]["response"]["value"] == pytest.approx(
        -u_par[region].mean() / qt_mag[region].mean(), rel=1e-6
    )
    # events without a selected dimuon have no recoil estimate
    assert (
        np.isnan(recoil).all(axis=1).sum() == len(event_id) - np.isfinite(recoil).all(axis=1).sum()
    )
