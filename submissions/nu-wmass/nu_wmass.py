"""tt -> 2l2nu neutrinos from the W-mass constraint (:func:`metbench.physics.neutrinos.neutrino_pz`)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.neutrinos import neutrino_pz
from metbench.physics.puppi_met import stored_puppi_met

__all__ = ["WMassNeutrinos"]


class WMassNeutrinos:
    """PUPPI MET, split equally between the two neutrinos, with pz from the W mass.

    Takes the truth-matched leptons (``uses_truth``); its MET is the PUPPI MET.
    """

    def predict(self, batch: EventBatch) -> np.ndarray:
        return stored_puppi_met(batch)

    def predict_neutrinos(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2, 3)`` neutrino momenta [GeV]; NaN where the event has no lepton pair."""
        leptons = batch.truth["truth_leptons"]
        half = 0.5 * stored_puppi_met(batch)
        out = np.full((len(batch), 2, 3), np.nan)
        for i in (0, 1):
            out[:, i, 0], out[:, i, 1] = half[:, 0], half[:, 1]
            out[:, i, 2] = neutrino_pz(leptons[:, i], half[:, 0], half[:, 1])
        out[~np.isfinite(leptons).all((1, 2))] = np.nan
        return out
