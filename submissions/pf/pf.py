"""PF MET: minus the vector sum of every particle-flow candidate (CMS ``RawMET``)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.kinematics import met_of_candidates

__all__ = ["PfMet"]


class PfMet:
    """MET from all particle-flow candidates."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        return met_of_candidates(batch.jagged)
