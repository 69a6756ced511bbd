"""The Perceiver of slowmoyang/KSC-RnD-2024-Transformer4MET as a metbench entry: the estimator of
:mod:`metbench.nn.perceiver`, shared with ``perceiver-sum-torch``."""

from __future__ import annotations

from metbench.nn.perceiver import PerceiverEstimator

__all__ = ["Perceiver"]


class Perceiver(PerceiverEstimator):
    """The Perceiver (the original's regression head; parameters: see
    :class:`metbench.nn.perceiver.PerceiverEstimator`)."""
