"""The W-mass constraint of a neutrino: its pz from m(l nu) = m_W given its lepton and its
transverse momentum (used by the ``nu-wmass`` entry, which shares the MET equally between the two
neutrinos of tt -> 2l2nu)."""

from __future__ import annotations

import numpy as np

from metbench.physics.constants import W_MASS

__all__ = ["neutrino_pz"]


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
