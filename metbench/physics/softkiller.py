"""SoftKiller (Cacciari, Salam, Soyez, arXiv:1407.0408), as fastjet-contrib's ``SoftKiller``.

Read from fjcontrib ``SoftKiller.cc`` and fastjet's ``RectangularGrid``:

* the grid covers rapidity (true rapidity, not pseudorapidity) ``-y_max <= y < y_max`` and
  ``0 <= phi < 2 pi`` with ``n_y = max(int(2 y_max / size + 0.5), 1)`` and
  ``n_phi = int(2 pi / size + 0.5)`` tiles, sizes recomputed to cover the range exactly
  (y_max = 5, size 0.4: 25 x 16 tiles of 0.4 x 0.393);
* per tile the maximum candidate pT (0 for an empty tile); the threshold is the element
  ``n_tiles // 2`` of the sorted maxima (no interpolation);
* a candidate survives if ``pT^2 >= (1 + 1e-12) * threshold^2``: a candidate exactly at the
  threshold is removed. The cut applies to every candidate, also those outside the grid, which
  only do not enter the threshold.

``input = "chs"`` first removes charged candidates not from the PV (``from_pv == 0``) and runs
SoftKiller on the rest, the CHS+SK combination of the paper.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softkiller_grid", "softkiller_threshold"]


def softkiller_grid(y_max: float, size: float) -> tuple[int, int, float, float]:
    """``(n_y, n_phi, dy, dphi)`` of fastjet's RectangularGrid for SoftKiller."""
    n_y = max(int(2 * y_max / size + 0.5), 1)
    n_phi = int(2 * np.pi / size + 0.5)
    return n_y, n_phi, 2 * y_max / n_y, 2 * np.pi / n_phi


def softkiller_threshold(
    pt: np.ndarray,
    y: np.ndarray,
    phi: np.ndarray,
    mask: np.ndarray,
    y_max: float = 5.0,
    size: float = 0.4,
) -> np.ndarray:
    """SoftKiller's pT threshold of each event [GeV] from ``(n, max_particles)`` arrays."""
    n_y, n_phi, dy, dphi = softkiller_grid(y_max, size)
    n_tiles = n_y * n_phi
    iy = np.floor((y + y_max) / dy).astype(np.int64)
    phi_0_2pi = np.mod(phi, 2 * np.pi)
    iphi = np.floor(phi_0_2pi / dphi).astype(np.int64)
    iphi[iphi == n_phi] = 0
    inside = mask & (y + y_max >= 0) & (iy < n_y)
    event = np.broadcast_to(np.arange(len(pt))[:, None], pt.shape)
    tile = event * n_tiles + iy * n_phi + iphi
    max_pt2 = np.zeros(len(pt) * n_tiles)
    np.maximum.at(max_pt2, tile[inside], (pt[inside].astype(np.float64)) ** 2)
    per_event = max_pt2.reshape(len(pt), n_tiles)
    median = np.partition(per_event, n_tiles // 2, axis=1)[:, n_tiles // 2]
    return np.sqrt(median)
