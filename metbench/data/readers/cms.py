"""CMS NanoAOD and PFNano.

PFNano (``PFCands_*``) maps onto the candidate columns directly, except:

* ``from_pv``: PFNano stores ``pvAssocQuality`` (``pvAssociationQuality()``: 0 NotReconstructedPrimary,
  1 OtherDeltaZ, 4 CompatibilityBTag, 5 CompatibilityDz, 6 UsedInFitLoose, 7 UsedInFitTight) but not
  the associated vertex, which ``PackedCandidate::fromPV()`` also needs. The vertex is inferred from
  ``dz`` (taken w.r.t. the first primary vertex): a track is at the PV when
  ``|dz| < 0.1 cm`` or ``|dz| / dzErr < 5`` (the dz-compatibility cuts of CMSSW's
  ``PrimaryVertexAssignment``), and always for qualities 4 and 5, which that assignment gives
  only for the first vertex. Then, as ``PackedCandidate::fromPV(0)`` (CMSSW 10_6): neutral -> 3;
  at the PV and quality 7 -> 3; at the PV, or an electron or muon -> 2; in no vertex fit (quality
  below 6) -> 1 (PVLoose); else (fitted to another vertex) -> 0. The stored TkMET (``-sum p`` over
  charged candidates with ``fromPV(0) > 0``, as the file's own configuration says:
  ``metbench data provenance``) checks this in the tests. Not reproducible: a track fitted to
  another vertex with fewer than 4 degrees of freedom is PVLoose too; NanoAOD keeps no vertex
  ndof beyond the first.
* ``d0``, ``dz``: PFNano writes -1 for candidates without track details (all below 0.5 GeV here);
  they stay -1, so they can be told apart. Neutral candidates get 0, as in the packed candidates.
* ``truth_is_pileup`` is not stored (False, recorded as missing).

Event columns: ``mu`` = ``Pileup_nTrueInt``, ``n_pu`` = ``Pileup_nPU``, ``n_pv`` = ``PV_npvs``,
generator MET from ``GenMET_pt/phi``. Every stored MET of :data:`CMS_STORED_MET` present in the file
becomes ``stored_<name>_x/_y``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import awkward as ak
import numpy as np

from metbench.data.readers.common import FileEvents
from metbench.events import EventBatch

__all__ = ["CMS_STORED_MET", "from_pv_from_quality", "read_cms", "resample_unstored"]

#: MET branches CMS NanoAOD may carry (``<name>_pt``, ``<name>_phi``).
CMS_STORED_MET: Final[tuple[str, ...]] = (
    "MET",
    "RawMET",
    "PuppiMET",
    "RawPuppiMET",
    "ChsMET",
    "TkMET",
    "CaloMET",
    "DeepMETResolutionTune",
    "DeepMETResponseTune",
)
DZ_MAX_CM: Final = 0.1
DZ_SIG_MAX: Final = 5.0


def from_pv_from_quality(
    charge: np.ndarray, pdg_id: np.ndarray, quality: np.ndarray, dz: np.ndarray, dz_err: np.ndarray
) -> np.ndarray:
    """CMS ``fromPV`` (0-3) from PFNano's association quality and dz (see the module docstring).

    Parameters
    ----------
    charge, pdg_id, quality, dz, dz_err
        Per candidate, as PFNano stores them (``dz`` [cm] w.r.t. the first PV, -1 without track).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        at_pv = (np.abs(dz) < DZ_MAX_CM) | (np.abs(dz) / dz_err < DZ_SIG_MAX)
    at_pv |= (quality == 4) | (quality == 5)  # CMSSW gives these two only for the first vertex
    lepton = np.isin(np.abs(pdg_id), (11, 13))
    out = np.zeros(len(charge), np.int8)
    out[quality < 6] = 1  # in no vertex fit: PVLoose wherever it was assigned
    out[at_pv | lepton] = 2
    out[at_pv & (quality == 7)] = 3
    out[charge == 0] = 3
    return out


def _vector(tree: Any, name: str, n: int) -> np.ndarray:
    pt = tree[f"{name}_pt"].array(library="np").astype(np.float64)
    phi = tree[f"{name}_phi"].array(library="np").astype(np.float64)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi)], 1)


def read_cms(tree: Any, source: Path) -> FileEvents:
    """Read a CMS NanoAOD ``Events`` tree (with or without PF candidates)."""
    keys = set(tree.keys())
    n = tree.num_entries
    missing: dict[str, str] = {}
    event: dict[str, np.ndarray] = {
        "event_id": tree["event"].array(library="np").astype(np.int64)
        if "event" in keys
        else np.arange(n, dtype=np.int64)
    }

    def column(branch: str, name: str, fill: float) -> np.ndarray:
        if branch in keys:
            return np.asarray(tree[branch].array(library="np"))
        missing[name] = f"no {branch} branch"
        return np.full(n, fill)

    event["mu"] = column("Pileup_nTrueInt", "mu", np.nan)
    event["n_pu"] = column("Pileup_nPU", "n_pu", -1)
    event["n_pv"] = column("PV_npvs", "n_pv", -1)
    has_truth = {"GenMET_pt", "GenMET_phi"} <= keys
    if has_truth:
        gen = _vector(tree, "GenMET", n)
    else:
        gen = np.full((n, 2), np.nan)
        missing["gen_met_x"] = missing["gen_met_y"] = "no GenMET branches (data, or not stored)"
    event["gen_met_x"], event["gen_met_y"] = gen[:, 0], gen[:, 1]
    event["gen_qt_x"] = event["gen_qt_y"] = np.full(n, np.nan)
    missing["gen_qt_x"] = missing["gen_qt_y"] = (
        "the boson qT is not read from NanoAOD generator particles"
    )
    stored = {
        name: _vector(tree, name, n)
        for name in CMS_STORED_MET
        if {f"{name}_pt", f"{name}_phi"} <= keys
    }
    candidates = None
    reader = "cms-nanoaod"
    if "PFCands_pt" in keys:
        reader = "cms-pfnano"
        cols = [
            "PFCands_pt", "PFCands_eta", "PFCands_phi", "PFCands_mass", "PFCands_charge",
            "PFCands_pdgId", "PFCands_d0", "PFCands_dz", "PFCands_dzErr", "PFCands_pvAssocQuality",
            "PFCands_puppiWeight",
        ]  # fmt: skip
        arr = tree.arrays([c for c in cols if c in keys], library="ak")
        counts = ak.to_numpy(ak.num(arr["PFCands_pt"]))
        flat = {c.removeprefix("PFCands_"): ak.to_numpy(ak.flatten(arr[c])) for c in arr.fields}
        charge = flat["charge"].astype(np.int8)
        neutral = charge == 0
        d0 = np.where(neutral, 0.0, flat["d0"])
        dz = np.where(neutral, 0.0, flat["dz"])
        if "pvAssocQuality" in flat and "dzErr" in flat:
            from_pv = from_pv_from_quality(
                charge, flat["pdgId"], flat["pvAssocQuality"], flat["dz"], flat["dzErr"]
            )
            missing["from_pv"] = (
                "inferred from pvAssocQuality and dz (PFNano does not store the associated vertex)"
            )
        else:
            from_pv = np.where(neutral, 3, 2).astype(np.int8)
            missing["from_pv"] = "no PFCands_pvAssocQuality/dzErr: 3 for neutral, 2 for charged"
        puppi = flat.get("puppiWeight")
        if puppi is None:
            puppi = np.ones(len(charge), np.float32)
            missing["puppi_weight"] = "no PFCands_puppiWeight: 1"
        candidates = ak.unflatten(
            ak.zip(
                {
                    "pt": flat["pt"],
                    "eta": flat["eta"],
                    "phi": flat["phi"],
                    "mass": flat["mass"],
                    "charge": charge,
                    "pdg_id": flat["pdgId"],
                    "d0": d0,
                    "dz": dz,
                    "from_pv": from_pv,
                    "puppi_weight": puppi,
                    "truth_is_pileup": np.zeros(len(charge), bool),
                }
            ),
            counts,
        )
        missing["truth_is_pileup"] = "not stored in PFNano (False)"
    else:
        missing["candidates"] = "no PFCands: only the stored MET estimators can be run"
    return FileEvents(
        reader=reader,
        process=source.stem,
        event=event,
        candidates=candidates,
        stored_met=stored,
        missing=missing,
        has_truth_met=has_truth,
    )


#: Tracked charged candidates below this pT [GeV] are the pool the unstored values are drawn from.
RESAMPLE_POOL_PT_MAX: Final = 1.5


def resample_unstored(batch: EventBatch, rng: np.random.Generator) -> EventBatch:
    """The batch with what PFNano does not store about a charged candidate drawn anew.

    PFNano writes ``d0 = dz = -1`` for charged candidates without track details (the soft ones),
    and so loses their impact parameters and, with them, the vertex behind ``fromPV``. Here each
    such candidate gets the ``(d0, dz, from_pv)`` of a random tracked charged candidate of the same
    event below :data:`RESAMPLE_POOL_PT_MAX`. Running an entry on many such batches shows how far
    its output is fixed by the file at all: a reimplementation cannot be asked to agree with the
    experiment more closely than that spread.

    Parameters
    ----------
    batch
        Events read from a PFNano file.
    rng
        Random generator.

    Returns
    -------
    EventBatch
        A copy; the other columns are untouched.
    """
    particles = batch.particles.copy()
    column = {name: i for i, name in enumerate(batch.features)}
    d0, dz = particles[..., column["d0"]], particles[..., column["dz"]]
    charged = batch.mask & (particles[..., column["charge"]] != 0)
    unstored = charged & (d0 == -1) & (dz == -1)
    tracked = charged & ~unstored
    soft = tracked & (particles[..., column["pt"]] < RESAMPLE_POOL_PT_MAX)
    targets = [column["d0"], column["dz"], column["from_pv"]]
    for row in np.flatnonzero(unstored.any(axis=1)):
        pool = np.flatnonzero(soft[row]) if soft[row].any() else np.flatnonzero(tracked[row])
        if len(pool) == 0:
            continue
        slots = np.flatnonzero(unstored[row])
        picks = rng.choice(pool, len(slots))
        for k in targets:
            particles[row, slots, k] = particles[row, picks, k]
    return batch.with_padded(particles)
