"""ATLAS DAOD_PHYSLITE (``CollectionTree``).

* truth MET: the ``NonInt`` term of ``MET_Truth`` (MeV -> GeV);
* ``mu`` = ``averageInteractionsPerCrossing``; ``n_pu`` = ``actualInteractionsPerCrossing`` (in
  simulation the number of pileup interactions overlaid in the crossing); ``n_pv`` = the
  ``PrimaryVertices`` that are not the dummy (``vertexType != 0``);
* stored terms: PHYSLITE keeps only the soft terms of the analysis MET (``MET_Core_AnalysisMET``:
  ``SoftClusCore``, ``PVSoftTrkCore``); the full MET needs METMaker with calibrated objects. They are
  stored as ``stored_<term>_x/_y`` but are not MET estimates and no entry scores them as such.
* no particle-flow candidates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from metbench.data.readers.common import FileEvents

__all__ = ["read_physlite"]

_MEV = 1e-3


def _terms(tree: Any, container: str) -> dict[str, np.ndarray]:
    names = tree[f"{container}AuxDyn.name"].array(library="ak")
    mpx = tree[f"{container}AuxDyn.mpx"].array(library="ak")
    mpy = tree[f"{container}AuxDyn.mpy"].array(library="ak")
    out = {}
    for term in sorted(set(ak.flatten(names).tolist())):
        sel = names == term
        x = ak.to_numpy(ak.fill_none(ak.firsts(mpx[sel]), np.nan)).astype(np.float64) * _MEV
        y = ak.to_numpy(ak.fill_none(ak.firsts(mpy[sel]), np.nan)).astype(np.float64) * _MEV
        out[term] = np.stack([x, y], 1)
    return out


def read_physlite(tree: Any, source: Path) -> FileEvents:
    """Read an ATLAS DAOD_PHYSLITE ``CollectionTree``."""
    keys = set(tree.keys())
    n = tree.num_entries
    missing: dict[str, str] = {"candidates": "PHYSLITE has no particle-flow candidates"}
    info = "EventInfoAuxDyn."
    event: dict[str, np.ndarray] = {
        "event_id": tree[info + "eventNumber"].array(library="np").astype(np.int64),
        "mu": tree[info + "averageInteractionsPerCrossing"].array(library="np"),
        "n_pu": np.rint(tree[info + "actualInteractionsPerCrossing"].array(library="np")),
    }
    if "PrimaryVerticesAuxDyn.vertexType" in keys:
        vtype = tree["PrimaryVerticesAuxDyn.vertexType"].array(library="ak")
        event["n_pv"] = ak.to_numpy(ak.sum(vtype != 0, axis=1))
    else:
        event["n_pv"] = np.full(n, -1)
        missing["n_pv"] = "no PrimaryVertices"
    has_truth = "MET_TruthAuxDyn.name" in keys
    if has_truth:
        truth = _terms(tree, "MET_Truth")
        gen = truth.get("NonInt", np.full((n, 2), np.nan))
    else:
        gen = np.full((n, 2), np.nan)
        missing["gen_met_x"] = missing["gen_met_y"] = "no MET_Truth container"
    event["gen_met_x"], event["gen_met_y"] = gen[:, 0], gen[:, 1]
    event["gen_qt_x"] = event["gen_qt_y"] = np.full(n, np.nan)
    missing["gen_qt_x"] = missing["gen_qt_y"] = "the boson qT is not read from PHYSLITE truth"
    stored = (
        _terms(tree, "MET_Core_AnalysisMET") if "MET_Core_AnalysisMETAuxDyn.name" in keys else {}
    )
    return FileEvents(
        reader="atlas-physlite",
        process=source.stem,
        event=event,
        candidates=None,
        stored_met=stored,
        missing=missing,
        has_truth_met=has_truth,
    )
