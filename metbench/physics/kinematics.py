"""Small kinematic helpers shared by the baselines (GeV, radians)."""

from __future__ import annotations

import numpy as np

__all__ = ["met_from_weights", "rapidity"]


def rapidity(pt: np.ndarray, eta: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """True rapidity y = asinh(pz / mT) of candidates given pt, eta and mass."""
    pz = pt * np.sinh(eta)
    mt = np.sqrt(pt**2 + mass**2)
    return np.asarray(np.arcsinh(pz / np.maximum(mt, 1e-12)))


def met_from_weights(pt: np.ndarray, phi: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """MET = -sum_i w_i pT_i over the candidate axis: ``(n, 2)`` float64 (px, py) [GeV].

    ``pt``, ``phi`` and ``weights`` have shape ``(n, max_particles)``; padded slots must carry
    weight 0.
    """
    wpt = np.asarray(weights, dtype=np.float64) * pt
    return np.stack([-(wpt * np.cos(phi)).sum(axis=1), -(wpt * np.sin(phi)).sum(axis=1)], axis=1)
