"""SoftKiller MET: the candidates below the event's SoftKiller threshold removed
(:mod:`metbench.physics.softkiller`)."""

from __future__ import annotations

import numpy as np

from metbench.events import EventBatch
from metbench.physics.kinematics import met_from_weights, rapidity
from metbench.physics.softkiller import softkiller_threshold

__all__ = ["SoftKillerMet"]


class SoftKillerMet:
    """MET from the candidates SoftKiller keeps.

    Parameters
    ----------
    y_max
        Rapidity half-range of the grid (fastjet-contrib example: 5).
    grid_size
        Requested tile size in y and phi (0.4).
    input
        ``"all"`` candidates, or ``"chs"``: charged pileup removed first.
    """

    def __init__(self, y_max: float = 5.0, grid_size: float = 0.4, input: str = "all") -> None:
        if input not in ("all", "chs"):
            raise ValueError(f"input must be 'all' or 'chs', got {input!r}")
        self.y_max, self.grid_size, self.input = y_max, grid_size, input

    def predict(self, batch: EventBatch) -> np.ndarray:
        pt = batch.feature("pt").astype(np.float64)
        phi = batch.feature("phi")
        mask = batch.mask
        if self.input == "chs":
            mask = mask & (batch.feature("from_pv") > 0)
        y = rapidity(
            pt, batch.feature("eta").astype(np.float64), batch.feature("mass").astype(np.float64)
        )
        threshold = softkiller_threshold(pt, y, phi, mask, self.y_max, self.grid_size)
        keep = mask & (pt**2 >= (1 + 1e-12) * threshold[:, None] ** 2)
        return met_from_weights(pt, phi, keep)
