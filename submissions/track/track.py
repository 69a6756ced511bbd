"""Track MET: charged candidates with ``from_pv >= 2`` (MiniAOD's ``TkMET``: charged,
associated with the PV0); ``min_from_pv=1`` gives UL NanoAOD's recomputed ``TkMET``
(``fromPV(0) > 0``, tracks in no vertex fit included)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.kinematics import met_of_candidates

__all__ = ["TrackMet"]


class TrackMet:
    """MET from charged candidates associated with the primary vertex.

    Parameters
    ----------
    min_from_pv
        Lowest ``from_pv`` kept: 2 (default) keeps the tracks attached to the PV, as MiniAOD's
        track MET (``pvAssociationQuality() >= 4 && vertexRef().key() == 0``); 1 keeps also the
        tracks in no vertex fit, as the track MET that UL NanoAOD recomputes
        (``fromPV(0) > 0``, ``metbench data provenance`` on a NanoAOD file shows it).
    """

    def __init__(self, min_from_pv: int = 2) -> None:
        if min_from_pv not in (1, 2, 3):
            raise ValueError(f"min_from_pv must be 1, 2 or 3, got {min_from_pv!r}")
        self.min_from_pv = int(min_from_pv)

    def predict(self, batch: EventBatch) -> np.ndarray:
        c = batch.jagged.values
        keep = (c["charge"] != 0) & (c["from_pv"] >= self.min_from_pv)
        return met_of_candidates(batch.jagged, keep)
