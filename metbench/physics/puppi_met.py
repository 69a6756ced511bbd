"""PUPPI MET of a batch: the candidates weighted by the dataset's stored PUPPI weights or by
weights recomputed with CMSSW's ``puppiNoLep`` settings (:mod:`metbench.physics.puppi`).

``MET = -sum_i w_i pT_i`` [GeV] over the event's particle-flow candidates. Used by the ``puppi``
entry and by the entries whose MET is PUPPI's (``nu-wmass``, ``deelema-torch``).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from metbench.events import EventBatch
from metbench.physics.kinematics import met_from_weights, met_of_candidates
from metbench.physics.puppi import PuppiParameters, puppi_weights

__all__ = ["PUPPI_CHUNK", "recomputed_puppi_weights", "stored_puppi_met", "weighted_met"]

#: Events per PUPPI call when weights are recomputed: bounds the memory of the neighbour pairs
#: (a pu200 event has ~7400 candidates); the weights do not depend on it.
PUPPI_CHUNK: Final[int] = 64


def weighted_met(batch: EventBatch, weights: np.ndarray) -> np.ndarray:
    """``(n, 2)`` MET (px, py) [GeV] of the batch's candidates with per-candidate ``weights``
    ``(n, max_particles)``."""
    return met_from_weights(batch.feature("pt"), batch.feature("phi"), weights)


def stored_puppi_met(batch: EventBatch) -> np.ndarray:
    """``(n, 2)`` MET (px, py) [GeV] weighted by the dataset's ``puppi_weight`` (the weights of
    CMS's PUPPI jets, with the tune the dataset was generated with)."""
    candidates = batch.jagged
    return met_of_candidates(candidates, candidates.values["puppi_weight"])


def recomputed_puppi_weights(
    batch: EventBatch, parameters: PuppiParameters, chunk: int = PUPPI_CHUNK
) -> np.ndarray:
    """PUPPI weights of the batch's candidates recomputed with ``parameters``,
    ``(n, max_particles)`` (0 where padded), ``chunk`` events per call (memory bound only)."""
    w = np.zeros(batch.mask.shape, dtype=np.float64)
    for start in range(0, len(batch), chunk):
        rows = slice(start, start + chunk)
        w[rows] = _recompute(batch.take(rows), parameters)
    return w


def _recompute(batch: EventBatch, parameters: PuppiParameters) -> np.ndarray:
    event, slot = np.nonzero(batch.mask)
    flat = {name: batch.feature(name)[event, slot] for name in batch.features}
    w = np.zeros(batch.mask.shape, dtype=np.float64)
    w[event, slot] = puppi_weights(
        event, len(batch), flat["pt"], flat["eta"], flat["phi"], flat["mass"], flat["charge"],
        flat["pdg_id"], flat["dz"], flat["from_pv"], batch.event["n_pv"], parameters,
    )  # fmt: skip
    return w
