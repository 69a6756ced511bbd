"""PUPPI MET: candidates weighted by PUPPI weights recomputed with CMSSW's ``puppiNoLep`` settings,
as CMS builds ``RawPuppiMET`` (leptons weight 1, photons above 20 GeV weight 1; Run-2 or Phase-2
tune), or by the dataset's stored (jet) PUPPI weights (:mod:`metbench.physics.puppi_met`)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.puppi import PUPPI_TUNES, PuppiParameters
from metbench.physics.puppi_met import (
    PUPPI_CHUNK,
    recomputed_puppi_weights,
    stored_puppi_met,
    weighted_met,
)

__all__ = ["PuppiMet"]


class PuppiMet:
    """MET from PUPPI-weighted candidates.

    Parameters
    ----------
    weights
        ``"nolep"``: weights recomputed with CMSSW's ``puppiNoLep`` settings, from which CMS builds
        ``RawPuppiMET`` (the ranked ``puppi`` entry); ``"stored"`` (default of the class): the
        dataset's ``puppi_weight``, the weights of CMS's PUPPI jets (``puppi``, with whatever tune
        the dataset was generated with).
    tune
        PUPPI parameters of the recomputation (``"nolep"`` only): ``"run2"`` (``Puppi_cff.py``)
        or ``"phase2"`` (its ``phase2_common`` modifier); see :mod:`metbench.physics.puppi`.
        The pu200 dataset's stored weights use ``"phase2"``, and so should its ``nolep`` MET.
    chunk
        Events per PUPPI call (memory bound; the result does not depend on it).
    """

    def __init__(
        self, weights: str = "stored", tune: str = "run2", chunk: int = PUPPI_CHUNK
    ) -> None:
        if weights not in ("stored", "nolep"):
            raise ValueError(f"weights must be 'stored' or 'nolep', got {weights!r}")
        if tune not in PUPPI_TUNES:
            raise ValueError(f"tune must be one of {', '.join(PUPPI_TUNES)}, got {tune!r}")
        if int(chunk) < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk!r}")
        self.weights = weights
        self.tune = tune
        self.chunk = int(chunk)
        self.parameters = PuppiParameters.no_lepton(tune)

    def predict(self, batch: EventBatch) -> np.ndarray:
        if self.weights == "stored":
            return stored_puppi_met(batch)
        return weighted_met(batch, recomputed_puppi_weights(batch, self.parameters, self.chunk))
