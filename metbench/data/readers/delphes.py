"""Delphes trees (``Delphes``), mapped by branch names.

Branches are found by their collection and field names, whether written by Delphes itself
(``EFlowTrack/EFlowTrack.PT``) or flattened (``EFlowTrack.PT``, ``EFlowTrack_PT``):

* ``EFlowTrack`` -> charged candidates (``PT``, ``Eta``, ``Phi``, ``Charge``, ``PID``, ``D0``, ``DZ``
  in mm -> cm; ``IsPU``, Delphes' truth pileup flag, -> ``truth_is_pileup`` and ``from_pv`` 0/3, as
  Delphes' own charged-hadron subtraction uses it); ``PID`` -> PF convention (+-11, +-13, else
  +-211 by charge);
* ``EFlowPhoton`` -> 22, ``EFlowNeutralHadron`` -> 130 (``ET``, ``Eta``, ``Phi``);
* ``GenMissingET`` -> truth MET; ``MissingET`` and ``PuppiMissingET`` -> stored estimators
  (``MET``, ``Phi``); ``Vertex`` (if present) -> ``n_pv``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from metbench.data.readers.common import FileEvents
from metbench.errors import DatasetError

__all__ = ["delphes_branches", "read_delphes"]

_BRANCH = re.compile(r"^(?:.*/)?(\w+)[._](\w+)$")


def delphes_branches(tree: Any) -> dict[tuple[str, str], str]:
    """(collection, field) -> branch name."""
    out: dict[tuple[str, str], str] = {}
    for key in tree.keys():  # noqa: SIM118 (iterating a TTree gives branches, not names)
        m = _BRANCH.match(key)
        if m:
            out.setdefault((m.group(1), m.group(2)), key)
    return out


def read_delphes(tree: Any, source: Path) -> FileEvents:
    """Read a Delphes tree."""
    b = delphes_branches(tree)
    n = tree.num_entries
    missing: dict[str, str] = {}

    def get(coll: str, fld: str, required: bool = True) -> ak.Array | None:
        key = b.get((coll, fld))
        if key is None:
            if required:
                raise DatasetError(
                    f"{source}: Delphes tree without {coll}.{fld}; the reader needs EFlowTrack, "
                    "EFlowPhoton and EFlowNeutralHadron (PT/ET, Eta, Phi)"
                )
            return None
        return tree[key].array(library="ak")

    def need(coll: str, fld: str) -> ak.Array:
        value = get(coll, fld)
        assert value is not None  # get raises for a required branch
        return value

    parts = []
    trk_pt, trk_charge = need("EFlowTrack", "PT"), need("EFlowTrack", "Charge")
    pid = get("EFlowTrack", "PID", False)
    apid = abs(pid) if pid is not None else ak.zeros_like(trk_charge)
    pdg = ak.where(
        apid == 11, 11 * -trk_charge, ak.where(apid == 13, 13 * -trk_charge, 211 * trk_charge)
    )
    is_pu = get("EFlowTrack", "IsPU", False)
    if is_pu is None:
        is_pu = ak.zeros_like(trk_charge)
        missing["truth_is_pileup"] = "no EFlowTrack.IsPU: False; from_pv 3 for every track"
    d0, dz = get("EFlowTrack", "D0", False), get("EFlowTrack", "DZ", False)
    if d0 is None or dz is None:
        missing["d0"] = missing["dz"] = "no EFlowTrack.D0/DZ: 0"
    parts.append(
        {
            "pt": trk_pt,
            "eta": need("EFlowTrack", "Eta"),
            "phi": need("EFlowTrack", "Phi"),
            "mass": ak.zeros_like(trk_pt) + 0.13957,
            "charge": trk_charge,
            "pdg_id": pdg,
            "d0": 0.1 * (d0 if d0 is not None else ak.zeros_like(trk_pt)),
            "dz": 0.1 * (dz if dz is not None else ak.zeros_like(trk_pt)),
            "from_pv": ak.where(is_pu != 0, 0, 3),
            "truth_is_pileup": is_pu != 0,
        }
    )
    for coll, pdg_id in (("EFlowPhoton", 22), ("EFlowNeutralHadron", 130)):
        et = need(coll, "ET")
        parts.append(
            {
                "pt": et,
                "eta": need(coll, "Eta"),
                "phi": need(coll, "Phi"),
                "mass": ak.zeros_like(et),
                "charge": ak.zeros_like(et, dtype=np.int8),
                "pdg_id": ak.zeros_like(et, dtype=np.int32) + pdg_id,
                "d0": ak.zeros_like(et),
                "dz": ak.zeros_like(et),
                "from_pv": ak.zeros_like(et, dtype=np.int8) + 3,
                "truth_is_pileup": ak.zeros_like(et, dtype=bool),
            }
        )
    merged = {k: ak.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    merged["puppi_weight"] = ak.ones_like(merged["pt"])
    missing["puppi_weight"] = "Delphes E-flow objects carry no PUPPI weight: 1"
    candidates = ak.zip(merged)

    def met(coll: str) -> np.ndarray | None:
        value, phi = get(coll, "MET", False), get(coll, "Phi", False)
        if value is None or phi is None:
            return None
        v = ak.to_numpy(ak.fill_none(ak.firsts(value), np.nan)).astype(np.float64)
        p = ak.to_numpy(ak.fill_none(ak.firsts(phi), np.nan)).astype(np.float64)
        return np.stack([v * np.cos(p), v * np.sin(p)], 1)

    gen = met("GenMissingET")
    has_truth = gen is not None
    if gen is None:
        gen = np.full((n, 2), np.nan)
        missing["gen_met_x"] = missing["gen_met_y"] = "no GenMissingET"
    stored = {name: v for name in ("MissingET", "PuppiMissingET") if (v := met(name)) is not None}
    vertices = get("Vertex", "Z", False)
    if vertices is None:
        missing["n_pv"] = "no Vertex branch"
    event = {
        "event_id": np.arange(n, dtype=np.int64),
        "mu": np.full(n, np.nan),
        "n_pu": np.full(n, -1),
        "n_pv": ak.to_numpy(ak.num(vertices)) if vertices is not None else np.full(n, -1),
        "gen_met_x": gen[:, 0],
        "gen_met_y": gen[:, 1],
        "gen_qt_x": np.full(n, np.nan),
        "gen_qt_y": np.full(n, np.nan),
    }
    missing["mu"] = missing["n_pu"] = "Delphes trees do not store the pileup"
    return FileEvents("delphes", source.stem, event, candidates, stored, missing, has_truth)
