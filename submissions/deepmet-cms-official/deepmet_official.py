"""CMS's official DeepMET graphs, with the inputs prepared as CMSSW's DeepMETProducer does.

From RecoMET/METPUSubtraction/plugins/DeepMETProducer.cc (see README.md):
candidates in collection order, at most 4500; continuous features (dxy, dz, eta, mass, pt/50,
puppiWeight, px/50, py/50), values beyond +-1e6 set to 0; categorical inputs charge (-1, 0, 1 ->
0, 1, 2), signed pdgId (11 classes) and fromPV (0-3); output x 50 = MET (px, py) in GeV.

The graph files are CMS's (cms-data RecoMET-METPUSubtraction); they are read in place from the
shared reference data and never copied into the project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metbench.events import EventBatch
from metbench.models.deepmet_graph import DeepMetGraph, graph_weights

NORM = 50.0
MAX_CANDIDATES = 4500
#: DeepMETProducer's signed pdgId -> class map.
PDG_CLASSES = {-211: 0, -13: 1, -11: 2, 0: 3, 1: 4, 2: 5, 11: 6, 13: 7, 22: 8, 130: 9, 211: 10}


def producer_inputs(batch: EventBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(continuous (n, 4500, 8), charge class, pdgId class, fromPV) as the producer fills them."""
    m = batch.max_particles
    size = MAX_CANDIDATES
    f = {name: batch.feature(name)[:, :size].astype(np.float64) for name in batch.features}
    mask = batch.mask[:, :size]
    pt, phi = f["pt"], f["phi"]
    cont = np.stack(
        [f["d0"], f["dz"], f["eta"], f["mass"], pt / NORM, f["puppi_weight"],
         pt * np.cos(phi) / NORM, pt * np.sin(phi) / NORM],
        axis=-1,
    )  # fmt: skip
    cont[np.abs(cont) > 1e6] = 0.0
    cont[~mask] = 0.0
    lookup = np.full(512, -1, np.int64)
    for pdg, cls in PDG_CLASSES.items():
        lookup[pdg + 256] = cls
    pdg_cls = lookup[np.clip(f["pdg_id"].astype(np.int64), -256, 255) + 256]
    if (pdg_cls[mask] < 0).any():
        bad = sorted(set(f["pdg_id"][mask & (pdg_cls < 0)].astype(int).tolist()))
        raise ValueError(f"pdgId {bad} is not in DeepMETProducer's map")
    charge_cls = f["charge"].astype(np.int64) + 1
    from_pv = f["from_pv"].astype(np.int64)
    for arr in (pdg_cls, charge_cls, from_pv):
        arr[~mask] = 0
    if m < size:  # pad the candidate axis to the graph's 4500
        pad = size - m
        cont = np.pad(cont, ((0, 0), (0, pad), (0, 0)))
        pdg_cls, charge_cls, from_pv = (
            np.pad(a, ((0, 0), (0, pad))) for a in (pdg_cls, charge_cls, from_pv)
        )
    return cont.astype(np.float32), charge_cls, pdg_cls, from_pv


class DeepMetOfficial:
    """Run one of CMS's DeepMET graphs.

    Parameters
    ----------
    graph
        Path of the GraphDef, relative to the project root or absolute.
    weights_dir
        The submission folder (given by the harness).
    """

    def __init__(self, graph: str, weights_dir: str | None = None) -> None:
        root = Path(weights_dir).parents[1] if weights_dir else Path.cwd()
        path = Path(graph) if Path(graph).is_absolute() else (root / graph)
        if not path.is_file():
            raise FileNotFoundError(
                f"the DeepMET graph {path} is not there (../shared/data/cms-deepmet)"
            )
        self.path = path.resolve()
        graph_weights(self.path)  # fails early on a file that is not a DeepMET graph
        self.graph = DeepMetGraph(self.path)  # loaded once, not per batch

    def predict(self, batch: EventBatch) -> np.ndarray:
        cont, charge, pdg, from_pv = producer_inputs(batch)
        return self.graph(cont, charge, pdg, from_pv).astype(np.float64) * NORM
