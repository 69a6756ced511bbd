"""CHS MET: candidates with ``from_pv > 0`` (CMS ``ChsMET``: the ``fromPV(0) > 0`` selection;
neutral candidates pass with ``from_pv = 3``)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.kinematics import met_of_candidates

__all__ = ["ChsMet"]


class ChsMet:
    """MET from candidates with ``from_pv > 0`` (charged pileup removed)."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        candidates = batch.jagged
        return met_of_candidates(candidates, candidates.values["from_pv"] > 0)
