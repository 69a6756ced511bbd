"""The truth oracle: the candidates not from a pileup interaction, by truth: the limit of
pileup removal with this detector (it still has resolution and acceptance)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.kinematics import met_of_candidates

__all__ = ["OracleMet"]


class OracleMet:
    """MET from the candidates that truth says are not from pileup (needs ``truth_is_pileup``)."""

    def predict(self, batch: EventBatch) -> np.ndarray:
        if "truth_is_pileup" not in batch.truth:
            raise KeyError("the oracle needs truth_is_pileup: declare uses_truth in its manifest")
        # the per-candidate truth is padded like the batch; its real slots in the jagged order
        keep = ~batch.truth["truth_is_pileup"][batch.mask]
        return met_of_candidates(batch.jagged, keep)
