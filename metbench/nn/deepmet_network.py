"""DeepMET in Keras 3: the architecture of CMS's DeepMET (yongbinfeng/DeepMETTraining and the
graphs of CMSSW's DeepMETProducer), able to load CMS's official weights.

Per candidate: 8 continuous inputs and 3 categorical inputs (charge, pdgId class, fromPV, in the
producer's order) embedded in 8 dimensions each; Dense 64 / 32 / 16 with tanh, each followed by
BatchNorm; Dense 3 gives ``w``. The event sum ``s = sum (w_0 - 1) * (w_1, w_2, px, py)`` over the
candidates goes through a final Dense 4 -> 2: the MET (px, py) divided by 50 GeV. Initialised with
``w = 0`` (a zero last kernel, where DeepMETTraining draws it with a 0.02 variance scale) and an
output layer that passes ``(px, py)`` through, the untrained network is exactly the PF MET.

``mask`` is the fourth input: 1 for real candidates, 0 for padding. CMS's producer pads every event
to 4500 zero candidates that all take part in the sum; :func:`load_official_weights` models built
with ``count_padding=True`` reproduce that exactly (and so the official graph's output), while the
networks trained here leave padding out of the sum and of the BatchNorm statistics, so that the
output does not depend on the padded length.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from metbench.nn.deepmet_graph import BATCHNORM_LAYERS, DENSE_LAYERS

__all__ = [
    "build_model",
    "load_official_weights",
    "resolution_loss",
    "response_loss",
]

#: Categorical inputs in the producer's order, with their number of classes.
CATEGORIES: tuple[tuple[str, int], ...] = (("charge", 3), ("pdg_class", 11), ("from_pv", 4))
#: Bins of |true MET| [GeV] of the response term (DeepMETTraining's loss.py).
RESPONSE_EDGES: tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 400.0, np.inf)


def _layers() -> Any:
    import keras

    @keras.saving.register_keras_serializable(package="metbench")
    class WeightedSum(keras.layers.Layer):  # type: ignore[misc]
        """``sum_candidates mask * (w_0 - 1) * (w_1, w_2, px, py)``: ``(n, 4)``."""

        supports_masking = True

        def compute_mask(self, *args: Any, **kwargs: Any) -> None:
            return None  # the candidate axis is summed away

        def call(self, w: Any, continuous: Any, mask: Any) -> Any:
            ops = keras.ops
            features = ops.concatenate([w[..., 1:3], continuous[..., 6:8]], axis=-1)
            weight = (w[..., 0:1] - 1.0) * ops.expand_dims(mask, -1)
            return ops.sum(weight * features, axis=1)

    return WeightedSum


def build_model(n_candidates: int | None = None, count_padding: bool = False) -> Any:
    """The DeepMET network, untrained (initialised to the PF MET).

    Parameters
    ----------
    n_candidates
        Fixed length of the candidate axis, or ``None`` for any length.
    count_padding
        Let padded candidates into the BatchNorm statistics, as CMS's training did (the sum is
        always weighted by ``mask``; feed ``mask = 1`` everywhere to reproduce the official graphs).

    Returns
    -------
    keras.Model
        Inputs ``input`` (n, N, 8) float32, ``input_cat0..2`` (n, N) int32, ``mask`` (n, N) float32;
        output (n, 2): MET (px, py) / 50 GeV.
    """
    import keras
    from keras import initializers, layers

    weighted_sum = _layers()
    continuous = keras.Input((n_candidates, 8), name="input")
    cats = [keras.Input((n_candidates,), dtype="int32", name=f"input_cat{i}") for i in range(3)]
    mask = keras.Input((n_candidates,), name="mask")
    embedded = [
        layers.Embedding(
            n,
            8,
            embeddings_initializer=initializers.RandomNormal(stddev=0.4 / 8),
            name=f"embedding{i}",
        )(cat)
        for i, (cat, (_, n)) in enumerate(zip(cats, CATEGORIES, strict=True))
    ]
    x = layers.Concatenate(name="concatenate")([continuous, *embedded])
    bn_mask = None if count_padding else layers.Lambda(lambda m: m > 0.5, name="real")(mask)
    for units, dense, bn in zip((64, 32, 16), DENSE_LAYERS[:3], BATCHNORM_LAYERS, strict=True):
        x = layers.Dense(units, activation="tanh", kernel_initializer="lecun_uniform", name=dense)(
            x
        )
        x = layers.BatchNormalization(momentum=0.95, epsilon=1e-3, name=bn)(x, mask=bn_mask)
    w = layers.Dense(3, kernel_initializer="zeros", name=DENSE_LAYERS[3])(x)
    summed = weighted_sum(name="weighted_sum")(w, continuous, mask)
    passthrough = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    output = layers.Dense(2, kernel_initializer=initializers.Constant(passthrough), name="output")(
        summed
    )
    return keras.Model([continuous, *cats, mask], output, name="deepmet")


def load_official_weights(model: Any, weights: dict[str, np.ndarray]) -> None:
    """Set a :func:`build_model` network's weights from CMS's graph
    (:func:`metbench.nn.deepmet_graph.graph_weights`)."""
    for i in range(3):
        model.get_layer(f"embedding{i}").set_weights([weights[f"embedding{i}/embeddings"]])
    for name in (*DENSE_LAYERS, "output"):
        model.get_layer(name).set_weights([weights[f"{name}/kernel"], weights[f"{name}/bias"]])
    for name in BATCHNORM_LAYERS:
        layer = model.get_layer(name)
        eps = float(weights[f"{name}/epsilon"])
        if not np.isclose(layer.epsilon, eps):
            raise ValueError(
                f"{name}: the graph's epsilon {eps} is not the model's {layer.epsilon}"
            )
        layer.set_weights(
            [weights[f"{name}/{p}"] for p in ("gamma", "beta", "moving_mean", "moving_variance")]
        )


def resolution_loss(y_true: Any, y_pred: Any) -> Any:
    """The resolution tune's loss: ``0.5 * mean(dpx^2 + dpy^2)`` in units of 50 GeV."""
    import keras

    return 0.5 * keras.ops.mean(keras.ops.sum((y_pred - y_true) ** 2, axis=-1))


def response_loss(weight: float) -> Any:
    """The response tune's loss: :func:`resolution_loss` plus ``weight`` times the binned
    response term of DeepMETTraining's ``loss.py``: in bins of |true MET| (50-100, 100-200,
    200-300, 300-400, > 400 GeV), the absolute sum of ``|predicted| - |true|``, summed over the
    bins and divided by the sum of ``|true|``."""
    import keras

    from metbench.nn.deepmet_inputs import NORM

    def loss(y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        true_pt = ops.sqrt(ops.sum(y_true**2, axis=-1))
        pred_pt = ops.sqrt(ops.sum(y_pred**2, axis=-1) + 1e-12)
        excess = pred_pt - true_pt
        dev = 0.0
        for lo, hi in itertools.pairwise(RESPONSE_EDGES):
            inside = ops.cast((true_pt * NORM > lo) & (true_pt * NORM <= hi), excess.dtype)
            dev = dev + ops.abs(ops.sum(excess * inside))
        dev = dev / (ops.sum(true_pt) + 1e-6)
        return resolution_loss(y_true, y_pred) + weight * dev

    return loss
