"""METNetSig (ATLAS; mattcleigh/METNetwork) as a metbench entry: the estimator of
:mod:`metbench.nn.metnet`."""

from __future__ import annotations

from metbench.nn.metnet import METNetSigTEstimator

__all__ = ["METNetSig"]


class METNetSig(METNetSigTEstimator):
    """METNetSig: METNet with a per-event MET resolution and the tails of its error, a Student t
    (parameters: see :class:`metbench.nn.metnet.METNetSigEstimator`)."""
