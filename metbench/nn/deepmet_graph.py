"""CMS's official DeepMET graphs (frozen TensorFlow GraphDefs from cms-data
RecoMET-METPUSubtraction): weight extraction, a NumPy forward pass, and the graph run with
TensorFlow.

Read from the graph (``deepmet_v1_2018.graphdef``): inputs ``input`` (n, 4500, 8) continuous
features, ``input_cat0`` / ``input_cat1`` / ``input_cat2`` (n, 4500, 1) categorical indices embedded
in 8 dimensions each (tables 3 x 8, 11 x 8, 4 x 8); concatenation to 32 features; Dense 64 tanh ->
BatchNorm -> Dense 32 tanh -> BatchNorm -> Dense 16 tanh -> BatchNorm -> Dense 3 (linear) per
candidate; then, with ``w`` those 3 outputs and ``(px, py)`` the continuous features 6 and 7,
``s = sum_candidates (w_0 - 1) * (w_1, w_2, px, py)`` and a final Dense 4 -> 2, ``output/BiasAdd``:
the missing (px, py) divided by the normalisation (50 GeV in CMSSW).

:func:`graph_weights` is the reusable extraction (the Keras DeepMET entry loads the official
weights through it); :func:`forward_numpy` is an independent implementation of the architecture
checked against the graph run by TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

__all__ = [
    "BATCHNORM_LAYERS",
    "DENSE_LAYERS",
    "DeepMetGraph",
    "forward_numpy",
    "graph_weights",
    "run_graph",
]

DENSE_LAYERS: Final[tuple[str, ...]] = ("dense_1", "dense_2", "dense_3", "dense_4")
BATCHNORM_LAYERS: Final[tuple[str, ...]] = (
    "batch_normalization_1",
    "batch_normalization_2",
    "batch_normalization_3",
)


def _graph_def(path: Path | str) -> Any:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(path).read_bytes())
    return graph_def


def graph_weights(path: Path | str) -> dict[str, np.ndarray]:
    """Every constant of a DeepMET graph that is a weight: ``embedding{0,1,2}/embeddings``,
    ``dense_{1..4}/{kernel,bias}``, ``batch_normalization_{1..3}/{gamma,beta,moving_mean,
    moving_variance}``, ``batch_normalization_k/epsilon``, ``output/{kernel,bias}``."""
    from tensorflow.python.framework import tensor_util

    wanted = {f"embedding{i}/embeddings" for i in range(3)}
    wanted |= {f"{d}/{p}" for d in (*DENSE_LAYERS, "output") for p in ("kernel", "bias")}
    wanted |= {
        f"{b}/{p}"
        for b in BATCHNORM_LAYERS
        for p in ("gamma", "beta", "moving_mean", "moving_variance")
    }
    out: dict[str, np.ndarray] = {}
    for node in _graph_def(path).node:
        if node.op != "Const":
            continue
        if node.name in wanted:
            out[node.name] = tensor_util.MakeNdarray(node.attr["value"].tensor)
        for b in BATCHNORM_LAYERS:
            if node.name == f"{b}/batchnorm/add/y":
                out[f"{b}/epsilon"] = tensor_util.MakeNdarray(node.attr["value"].tensor)
    missing = wanted - set(out)
    if missing:
        raise ValueError(f"{path}: not a DeepMET graph, it lacks {sorted(missing)[:3]}")
    return out


def forward_numpy(
    w: dict[str, np.ndarray],
    continuous: np.ndarray,
    cat0: np.ndarray,
    cat1: np.ndarray,
    cat2: np.ndarray,
) -> np.ndarray:
    """The DeepMET graph in NumPy (inference mode): ``(n, 2)`` normalised missing (px, py)."""
    x = np.concatenate(
        [
            continuous,
            w["embedding0/embeddings"][cat0.astype(np.int64)],
            w["embedding1/embeddings"][cat1.astype(np.int64)],
            w["embedding2/embeddings"][cat2.astype(np.int64)],
        ],
        axis=-1,
    ).astype(np.float64)
    for dense, bn in zip(DENSE_LAYERS[:3], BATCHNORM_LAYERS, strict=True):
        x = np.tanh(x @ w[f"{dense}/kernel"] + w[f"{dense}/bias"])
        scale = w[f"{bn}/gamma"] / np.sqrt(w[f"{bn}/moving_variance"] + w[f"{bn}/epsilon"])
        x = (x - w[f"{bn}/moving_mean"]) * scale + w[f"{bn}/beta"]
    per_candidate = x @ w["dense_4/kernel"] + w["dense_4/bias"]  # (n, N, 3)
    features = np.concatenate([per_candidate[..., 1:], continuous[..., 6:8]], axis=-1)
    summed = ((per_candidate[..., :1] - 1.0) * features).sum(axis=1)
    return np.asarray(summed @ w["output/kernel"] + w["output/bias"])


class DeepMetGraph:
    """A DeepMET graph loaded once into a TensorFlow session; call it like :func:`run_graph`."""

    def __init__(self, path: Path | str) -> None:
        import tensorflow as tf

        self.path = Path(path)
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.compat.v1.import_graph_def(_graph_def(self.path), name="")
        self._session = tf.compat.v1.Session(graph=self._graph)

    def __call__(
        self, continuous: np.ndarray, cat0: np.ndarray, cat1: np.ndarray, cat2: np.ndarray
    ) -> np.ndarray:
        """``(n, 2)`` normalised missing (px, py)."""
        return np.asarray(
            self._session.run(
                "output/BiasAdd:0",
                {
                    "input:0": continuous.astype(np.float32),
                    "input_cat0:0": cat0.astype(np.float32)[..., None],
                    "input_cat1:0": cat1.astype(np.float32)[..., None],
                    "input_cat2:0": cat2.astype(np.float32)[..., None],
                },
            )
        )


def run_graph(
    path: Path | str, continuous: np.ndarray, cat0: np.ndarray, cat1: np.ndarray, cat2: np.ndarray
) -> np.ndarray:
    """Run the frozen graph once with TensorFlow: ``(n, 2)`` normalised missing (px, py)."""
    return DeepMetGraph(path)(continuous, cat0, cat1, cat2)
