"""PF MET: minus the vector sum of every particle-flow candidate (CMS ``RawMET``)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.kinematics import met_from_weights

__all__ = ["PfMet"]


class PfMet:
    """MET from all particle-flow candidates."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        return met_from_weights(batch.feature("pt"), batch.feature("phi"), batch.mask)
