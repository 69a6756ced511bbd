"""metbench's Perceiver variant as a metbench entry: the estimator of :mod:`metbench.nn.perceiver`
with ``head = "sum"`` (set in the manifest), shared with ``perceiver-torch``."""

from __future__ import annotations

from metbench.nn.perceiver import PerceiverEstimator

__all__ = ["PerceiverSum"]


class PerceiverSum(PerceiverEstimator):
    """The Perceiver with a DeepMET-style weighted sum (``head = "sum"``; parameters: see
    :class:`metbench.nn.perceiver.PerceiverEstimator`)."""
