"""Object-based MET with ATLAS's jet working points (Loose, Tight, Tighter, Tenacious).

ATLAS builds MET from calibrated hard objects plus a track soft term (METMaker). This baseline
follows that structure with the objects the event model allows:

* **leptons**: e and mu candidates (``|pdg_id|`` 11, 13) with pT > 10 GeV, ``|eta| < 2.5``,
  associated with the PV (``from_pv >= 2``); no isolation (the event model has none).
* **jets**: fastjet anti-kT R = 0.4 on the other candidates after charged-pileup removal
  (``from_pv > 0``, as ATLAS's particle-flow jets drop charged objects from other vertices),
  ``|eta| < 4.5``.
* **JVT-like variable**: the jet-vertex fraction of tracks within Delta R < 0.4 of the jet axis,
  ``sum pT(tracks from the PV) / sum pT(all tracks)`` (charged candidates, pT > 0.5 GeV,
  ``|eta| < 2.5``); -0.1 for a jet without tracks, as ATLAS sets JVT. ATLAS's JVT is a likelihood
  of corrJVF and R_pT; the cut values below are ATLAS's, applied to this simpler variable.
* **working points** (METMaker, Release 22 with the R21 JVT fallback; central/forward boundary
  |eta| = 2.4, JVT only for central jets below the listed pT):

  ===========  ==========  ==========  =================================================
  WP           central pT  forward pT  JVT cut (central jets)
  ===========  ==========  ==========  =================================================
  Loose        20 GeV      20 GeV      > 0.5 below 60 GeV (PFlow value)
  Tight        20 GeV      30 GeV      > 0.5 below 60 GeV
  Tighter      20 GeV      35 GeV      > 0.5 below 60 GeV
  Tenacious    20 GeV      35 GeV      > 0.91 below 40, > 0.59 below 60, > 0.11 below 120
  ===========  ==========  ==========  =================================================

* **track soft term**: charged candidates from the PV (``from_pv >= 2``) with pT > 0.4 GeV and
  ``|eta| < 2.5`` that are neither selected leptons nor constituents of selected jets.

``MET = -(sum leptons + sum selected jets + soft term)``. :func:`met_terms` returns every term of
every working point, the inputs the METNet entries use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import awkward as ak
import numpy as np

from metbench.events import EventBatch

__all__ = ["MET_TERMS_CHUNK", "WORKING_POINTS", "WorkingPoint", "met_terms"]

ETA_FORWARD: Final = 2.4
JET_ETA_MAX: Final = 4.5
JET_R: Final = 0.4


@dataclass(frozen=True)
class WorkingPoint:
    """Jet selection of one MET working point (pT in GeV)."""

    central_pt: float
    forward_pt: float
    jvt: tuple[tuple[float, float], ...]  # (pT below which the cut applies, minimum JVT)


WORKING_POINTS: Final[dict[str, WorkingPoint]] = {
    "loose": WorkingPoint(20.0, 20.0, ((60.0, 0.5),)),
    "tight": WorkingPoint(20.0, 30.0, ((60.0, 0.5),)),
    "tighter": WorkingPoint(20.0, 35.0, ((60.0, 0.5),)),
    "tenacious": WorkingPoint(20.0, 35.0, ((40.0, 0.91), (60.0, 0.59), (120.0, 0.11))),
}


def _passes(wp: WorkingPoint, pt: np.ndarray, eta: np.ndarray, jvf: np.ndarray) -> np.ndarray:
    aeta = np.abs(eta)
    central = aeta < ETA_FORWARD
    ok = (aeta < JET_ETA_MAX) & np.where(central, pt > wp.central_pt, pt > wp.forward_pt)
    lower = 0.0
    for pt_max, cut in wp.jvt:
        tier = central & (pt >= lower) & (pt < pt_max)
        ok &= ~tier | (jvf >= cut)
        lower = pt_max
    return ok


def _starts(counts: np.ndarray) -> np.ndarray:
    """Offset of each group's first element in a flat array grouped by ``counts`` (an empty
    ``counts`` gives an empty array: a batch or chunk without jets or tracks)."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.cumsum(counts) - counts


def _sum(group: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per-group sums of ``weights`` as float64 (``np.bincount`` returns integers when nothing is
    selected, e.g. in a chunk without a single jet)."""
    return np.bincount(group, weights, n).astype(np.float64, copy=False)


def _vec(px: np.ndarray, py: np.ndarray, sel: np.ndarray, event: np.ndarray, n: int) -> np.ndarray:
    return np.stack([_sum(event[sel], px[sel], n), _sum(event[sel], py[sel], n)], axis=1)


#: Events per jet clustering call in :func:`met_terms`: the jet-track pairs of a pu200 event take
#: ~12 MB, so a batch of 1024 in one call would pass the harness's 8 GiB limit.
MET_TERMS_CHUNK: Final[int] = 64


def met_terms(
    batch: EventBatch,
    working_points: tuple[str, ...] = tuple(WORKING_POINTS),
    chunk: int = MET_TERMS_CHUNK,
) -> dict[str, np.ndarray]:
    """Every MET term of every working point for a batch.

    Parameters
    ----------
    batch
        Events.
    working_points
        Names in :data:`WORKING_POINTS`.
    chunk
        Events clustered at a time (bounds the memory; the result does not depend on it).

    Returns
    -------
    dict
        ``(n, 2)`` vectors [GeV] (the negative vector sum of the objects, i.e. each term's
        contribution to MET): ``leptons``, ``<wp>_jets``, ``<wp>_soft`` and ``<wp>`` (the total);
        ``(n,)`` scalar sums [GeV]: ``leptons_sumet``, ``<wp>_jets_sumet``, ``<wp>_soft_sumet``; and
        ``(n,)`` counts ``n_leptons``, ``<wp>_n_jets``.
    """
    if len(batch) <= chunk:
        return _met_terms(batch, working_points)
    parts = [
        _met_terms(batch.take(slice(i, i + chunk)), working_points)
        for i in range(0, len(batch), chunk)
    ]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _met_terms(batch: EventBatch, working_points: tuple[str, ...]) -> dict[str, np.ndarray]:
    import fastjet

    n = len(batch)
    event, slot = np.nonzero(batch.mask)
    f = {name: batch.feature(name)[event, slot].astype(np.float64) for name in batch.features}
    pt, eta, phi = f["pt"], f["eta"], f["phi"]
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    apdg = np.abs(f["pdg_id"]).astype(np.int64)
    charged = f["charge"] != 0
    from_pv = f["from_pv"]
    lepton = np.isin(apdg, (11, 13)) & (pt > 10) & (np.abs(eta) < 2.5) & (from_pv >= 2)
    jet_input = ~lepton & (from_pv > 0) & (np.abs(eta) < 4.9)
    track = charged & (pt > 0.5) & (np.abs(eta) < 2.5)

    # jets, per event
    idx_in = np.flatnonzero(jet_input)
    counts_in = np.bincount(event[idx_in], minlength=n)
    pz = pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + f["mass"] ** 2)
    inputs = ak.unflatten(
        ak.zip({"px": px[idx_in], "py": py[idx_in], "pz": pz[idx_in], "E": energy[idx_in]}),
        counts_in,
    )
    sequence = fastjet.ClusterSequence(
        inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    )
    min_pt = min(min(wp.central_pt, wp.forward_pt) for wp in WORKING_POINTS.values())
    jets = sequence.inclusive_jets(min_pt=min_pt)
    constituents = sequence.constituent_index(min_pt=min_pt)
    jpx, jpy, jpz = (
        ak.to_numpy(ak.flatten(jets[c])).astype(np.float64) for c in ("px", "py", "pz")
    )
    jcounts = ak.to_numpy(ak.num(jets))
    jevent = np.repeat(np.arange(n), jcounts)
    jpt = np.hypot(jpx, jpy)
    jeta = np.arcsinh(jpz / np.maximum(jpt, 1e-12))
    jphi = np.arctan2(jpy, jpx)

    # JVF-like variable from tracks within dR < 0.4 (pairs of a jet and a track of its event)
    t_idx = np.flatnonzero(track)
    t_counts = np.bincount(event[t_idx], minlength=n)
    t_start = _starts(t_counts)
    tracks_per_jet = t_counts[jevent]
    pair_j = np.repeat(np.arange(len(jpt)), tracks_per_jet)
    within = np.arange(len(pair_j)) - np.repeat(_starts(tracks_per_jet), tracks_per_jet)
    pair_t = t_idx[t_start[jevent[pair_j]] + within]
    dphi = np.mod(phi[pair_t] - jphi[pair_j] + np.pi, 2 * np.pi) - np.pi
    close = (eta[pair_t] - jeta[pair_j]) ** 2 + dphi**2 < JET_R**2
    all_pt = _sum(pair_j[close], pt[pair_t][close], len(jpt))
    pv = close & (from_pv[pair_t] >= 2)
    pv_pt = _sum(pair_j[pv], pt[pair_t][pv], len(jpt))
    jvf = np.where(all_pt > 0, pv_pt / np.where(all_pt > 0, all_pt, 1.0), -0.1)

    # constituent -> flat candidate index
    local = ak.to_numpy(ak.flatten(constituents, axis=None)).astype(np.int64)
    per_jet = ak.to_numpy(ak.flatten(ak.num(constituents, axis=2)))
    c_jet = np.repeat(np.arange(len(jpt)), per_jet)
    in_start = _starts(counts_in)
    c_flat = idx_in[in_start[jevent[c_jet]] + local]

    out: dict[str, np.ndarray] = {}
    out["leptons"] = -_vec(px, py, lepton, event, n)
    out["leptons_sumet"] = _sum(event[lepton], pt[lepton], n)
    out["n_leptons"] = np.bincount(event[lepton], minlength=n).astype(np.float64)
    soft_base = track & (from_pv >= 2) & (pt > 0.4) & ~lepton
    for name in working_points:
        wp = WORKING_POINTS[name]
        sel = _passes(wp, jpt, jeta, jvf)
        out[f"{name}_jets"] = -_vec(jpx, jpy, sel, jevent, n)
        out[f"{name}_jets_sumet"] = _sum(jevent[sel], jpt[sel], n)
        out[f"{name}_n_jets"] = np.bincount(jevent[sel], minlength=n).astype(np.float64)
        in_jet = np.zeros(len(pt), dtype=bool)
        in_jet[c_flat[sel[c_jet]]] = True
        soft = soft_base & ~in_jet
        out[f"{name}_soft"] = -_vec(px, py, soft, event, n)
        out[f"{name}_soft_sumet"] = _sum(event[soft], pt[soft], n)
        out[name] = out["leptons"] + out[f"{name}_jets"] + out[f"{name}_soft"]
    return out
