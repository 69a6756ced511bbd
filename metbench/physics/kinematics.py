"""Small kinematic helpers shared by the baselines (GeV, radians)."""

from __future__ import annotations

import numpy as np

from metbench.events import JaggedParticles

__all__ = ["met_from_weights", "met_of_candidates", "rapidity"]


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


def met_of_candidates(jagged: JaggedParticles, weights: np.ndarray | None = None) -> np.ndarray:
    """MET = -sum_i w_i pT_i of each event's flat candidates: ``(n, 2)`` float64 (px, py) [GeV].

    ``weights`` is ``(n_candidates,)`` (None: 1). Each event is summed in its candidates' order
    (``np.bincount``), so its MET never depends on the other events of its batch; no padded array
    is made.
    """
    n = len(jagged.offsets) - 1
    pt = jagged.values["pt"].astype(np.float64)
    phi = jagged.values["phi"]
    wpt = pt if weights is None else np.asarray(weights, dtype=np.float64) * pt
    event = jagged.event_index
    return np.stack(
        [
            -np.bincount(event, wpt * np.cos(phi), minlength=n),
            -np.bincount(event, wpt * np.sin(phi), minlength=n),
        ],
        axis=1,
    )
