"""Object-based MET at one of ATLAS's jet working points (:mod:`metbench.physics.objects`)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.objects import WORKING_POINTS, met_terms

__all__ = ["AtlasWorkingPointMet"]


class AtlasWorkingPointMet:
    """Object-based MET at one ATLAS working point.

    Parameters
    ----------
    working_point
        ``loose``, ``tight``, ``tighter`` or ``tenacious``.
    """

    def __init__(self, working_point: str = "tight") -> None:
        if working_point not in WORKING_POINTS:
            raise ValueError(
                f"unknown working point {working_point!r}; choose one of {', '.join(WORKING_POINTS)}"
            )
        self.working_point = working_point

    def predict(self, batch: EventBatch) -> np.ndarray:
        return met_terms(batch, (self.working_point,))[self.working_point]
