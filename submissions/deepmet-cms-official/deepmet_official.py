"""CMS's official DeepMET graphs, with the inputs prepared as CMSSW's DeepMETProducer does.

The inputs (``metbench.nn.deepmet_inputs.producer_inputs``) follow
RecoMET/METPUSubtraction/plugins/DeepMETProducer.cc; see README.md.

The graph files are CMS's (cms-data RecoMET-METPUSubtraction); they are read in place from the
shared reference data and never copied into the project.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metbench.events import EventBatch
from metbench.nn.deepmet_graph import DeepMetGraph, graph_weights
from metbench.nn.deepmet_inputs import NORM, producer_inputs

#: Events per call of the graph (as the Keras DeepMET entry chunks its batches).
CHUNK = 128


class DeepMetOfficial:
    """Run one of CMS's DeepMET graphs.

    Parameters
    ----------
    graph
        Path of the GraphDef, relative to the submission folder (the manifest's ``graphs/``
        links into ``../shared/data/cms-deepmet``, listed as weights so that the sandbox shows
        their targets) or absolute.
    weights_dir
        The submission folder (given by the harness).
    """

    def __init__(self, graph: str, weights_dir: str | None = None) -> None:
        root = Path(weights_dir) if weights_dir else Path(__file__).resolve().parent
        path = Path(graph) if Path(graph).is_absolute() else (root / graph)
        if not path.is_file():
            raise FileNotFoundError(
                f"the DeepMET graph {path} is not there (graphs/ links into "
                "../shared/data/cms-deepmet, beside the project)"
            )
        self.path = path.resolve()
        graph_weights(self.path)  # fails early on a file that is not a DeepMET graph
        self.graph = DeepMetGraph(self.path)  # loaded once, not per batch

    def predict(self, batch: EventBatch) -> np.ndarray:
        cont, charge, pdg, from_pv = producer_inputs(batch)
        out = np.empty((len(cont), 2), np.float64)
        # the graph's activations are (events, 4500, 64) float32: ~1.2 GB for 1024 events per
        # layer, so the harness's batch-1024 throughput run is fed in chunks
        for start in range(0, len(cont), CHUNK):
            part = slice(start, start + CHUNK)
            out[part] = self.graph(cont[part], charge[part], pdg[part], from_pv[part])
        return out * NORM
