"""METNet (ATLAS; mattcleigh/METNetwork) as a metbench entry: the estimator of
:mod:`metbench.nn.metnet`, shared with ``metnetsig-torch``'s METNetSig."""

from __future__ import annotations

from metbench.nn.metnet import METNetEstimator

__all__ = ["METNet"]


class METNet(METNetEstimator):
    """METNet: an MLP combining ATLAS's object-based MET working points (parameters: see
    :class:`metbench.nn.metnet.METNetEstimator`)."""
