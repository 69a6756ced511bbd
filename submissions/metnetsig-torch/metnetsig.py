"""METNetSig (ATLAS; mattcleigh/METNetwork) as a metbench entry: the estimator of
:mod:`metbench.nn.metnet`."""

from __future__ import annotations

from metbench.nn.metnet import METNetSigEstimator

__all__ = ["METNetSig"]


class METNetSig(METNetSigEstimator):
    """METNetSig: METNet with a per-event MET resolution (parameters: see
    :class:`metbench.nn.metnet.METNetSigEstimator`)."""
