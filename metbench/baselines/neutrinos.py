"""The analytic neutrino reconstruction baseline for tt -> 2l2nu: the MET shared equally between
the two neutrinos, each neutrino's pz from the W-mass constraint m(l nu) = 80.4 GeV."""

from __future__ import annotations

import numpy as np

from metbench.baselines.met import PuppiMet
from metbench.events import EventBatch
from metbench.physics.constants import W_MASS

__all__ = ["WMassNeutrinos", "neutrino_pz"]


def neutrino_pz(
    lepton: np.ndarray, nu_px: np.ndarray, nu_py: np.ndarray, w_mass: float = W_MASS
) -> np.ndarray:
    """pz of a massless neutrino with the given (px, py) such that m(l nu) = ``w_mass``.

    Of the two solutions the one with the smaller |pz|; where there is none (the transverse mass
    exceeds ``w_mass``), the real part of the complex pair.

    Parameters
    ----------
    lepton
        ``(..., 4)`` (px, py, pz, E) of the charged lepton [GeV] (massless to a good approximation).
    nu_px, nu_py
        The neutrino's transverse momentum [GeV].
    """
    lx, ly, lz, le = (lepton[..., i] for i in range(4))
    lt2 = lx**2 + ly**2
    mu = 0.5 * w_mass**2 + lx * nu_px + ly * nu_py
    centre = mu * lz / lt2
    disc = centre**2 - (le**2 * (nu_px**2 + nu_py**2) - mu**2) / lt2
    root = np.sqrt(np.maximum(disc, 0.0))
    a, b = centre + root, centre - root
    return np.where(np.abs(a) < np.abs(b), a, b)


class WMassNeutrinos:
    """PUPPI MET, split equally between the two neutrinos, with pz from the W mass.

    Takes the truth-matched leptons (``uses_truth``); its MET is the PUPPI MET.
    """

    def __init__(self) -> None:
        self.met = PuppiMet()

    def predict(self, batch: EventBatch) -> np.ndarray:
        return self.met.predict(batch)

    def predict_neutrinos(self, batch: EventBatch) -> np.ndarray:
        """``(n, 2, 3)`` neutrino momenta [GeV]; NaN where the event has no lepton pair."""
        leptons = batch.truth["truth_leptons"]
        half = 0.5 * self.met.predict(batch)
        out = np.full((len(batch), 2, 3), np.nan)
        for i in (0, 1):
            out[:, i, 0], out[:, i, 1] = half[:, 0], half[:, 1]
            out[:, i, 2] = neutrino_pz(leptons[:, i], half[:, 0], half[:, 1])
        out[~np.isfinite(leptons).all((1, 2))] = np.nan
        return out
